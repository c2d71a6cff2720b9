"""Drills aimed at the harvester's positions: the rebalance scenario that made faust
commit records it never applied (``../shared/faust-rebalance-lab``), and a crash
between a blacklisting and its sanction. Both run with the default (batched) settings."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from moisson.ops import pipeline
from processors.engine.agent import FAULT_EXIT_CODE
from tests.drills.harness import Pipeline, send, sent, size

SIZE = size()
pytestmark = [pytest.mark.drills, pytest.mark.timeout(SIZE.timeout_s + 300)]
CYCLES = 4


def committed_and_ends(drill: Pipeline) -> tuple[dict, dict]:
    """The harvester group's committed offsets and the end offsets of every sensor partition."""
    s = drill.settings
    consumer = KafkaConsumer(**s.kafka.client_kwargs(), group_id=s.processor.app_id)
    try:
        parts = [TopicPartition(t, p) for t in s.topics.sensors for p in range(s.kafka.partitions)]
        ends = consumer.end_offsets(parts)
        return {tp: consumer.committed(tp) for tp in parts}, ends
    finally:
        consumer.close()


def test_a_second_worker_joins_and_is_killed_four_times(drill: Pipeline):
    """The lab's scenario on the real harvester: worker 0 runs throughout; four times a
    second worker joins (a rebalance) and is killed -9 (another). Nothing committed may
    be unapplied, and no partition's commit may freeze."""
    thread, outcome = send(drill.recording, drill.settings, seconds=20.0 * CYCLES)
    drill.start_sink()
    drill.start_worker(0)
    log0 = drill.logs / "worker-0-1.log"
    drill.wait_progress(drill.applied, 0.05 * drill.events, SIZE.timeout_s)
    resumes: list[float] = []
    killed = time.monotonic()
    for _ in range(CYCLES):
        readies = log0.read_text(errors="replace").count("Worker ready")
        drill.start_worker(1)
        # The join must finish before the kill: a worker killed while still joining is
        # dropped by the coordinator inside the same rebalance, so only one would follow.
        pipeline.wait_for(
            lambda: log0.read_text(errors="replace").count("Worker ready"),
            lambda n, seen=readies: n >= seen + 1,
            SIZE.timeout_s,
            alive=drill.alive,
        )
        time.sleep(1)  # let the newcomer fold a batch or two of its share
        pipeline.kill(drill.workers.pop(1))
        killed = time.monotonic()
        pipeline.wait_for(  # the take-over of the killed worker's share
            lambda: log0.read_text(errors="replace").count("Worker ready"),
            lambda n, seen=readies: n >= seen + 2,
            SIZE.timeout_s,
            alive=drill.alive,
        )
        resumes.append(time.monotonic() - killed)
        time.sleep(2)
    sent(thread, outcome, SIZE.timeout_s)
    result = drill.finish("worker joins, killed ×4", [], resumes, killed, SIZE.timeout_s)
    # Commits are the positions, written after what they cover was flushed: all at the end.
    deadline = time.monotonic() + 30
    while True:
        committed, ends = committed_and_ends(drill)
        frozen = {f"{tp.topic}[{tp.partition}]": (committed[tp], ends[tp]) for tp in ends}
        frozen = {k: v for k, v in frozen.items() if v[0] != v[1]}
        if not frozen or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not frozen, f"commits below the end of their partition: {frozen}"
    result.notes = f"{CYCLES} joins and kill -9s; 16 partitions committed to their end"


def test_killed_between_a_blacklisting_and_its_sanction(drill: Pipeline):
    """The worker persists a blacklisting's double, then dies before the sanction is
    sent (a fault-injection hook: a random kill -9 would not land there). The restarted
    worker finds the event applied and sends the citizen's current sanction."""
    sent(*send(drill.recording, drill.settings), timeout=300)
    drill.start_sink()
    proc = drill.start_faulty_worker("exit-before-sanction")
    code = proc.wait(SIZE.timeout_s)
    assert code == FAULT_EXIT_CODE, (drill.logs / "worker-faulty-1.log").read_text()[-3000:]
    struck = time.monotonic()
    drill.start_worker(0)
    drill.finish("exit before a sanction", [], [], struck, SIZE.timeout_s)
    blacklisted = {c for c, d in drill.expected.items() if d["blacklisted"]}
    assert blacklisted, "the recording blacklists someone"
