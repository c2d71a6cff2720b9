"""The restart drill: a worker folds three chunks of one long recording and, after each,
is killed with ``kill -9`` and started again. With its state on disk (RocksDB, written
on the changelog's acknowledgement) a restart reads only the changelog's tail, so it
takes as long after the third chunk as after the first; a worker on an empty data dir
reads the compacted changelog, about one record per citizen, not one per event.
Then the sink stores it all and PostgreSQL equals the oracle: 0 lost, 0 applied twice.

CI size: 300 citizens, 3 × 10,000 events. `make drills`: 100,000 citizens, 3 × 100,000.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from moisson.ops import pipeline
from moisson.ops.recording import open_recording, write_simulation
from moisson.ops.verify import expected_doubles
from moisson.settings import SENSOR_KINDS, Settings
from processors.core.oracle import Oracle
from producers.city import generate_events
from producers.publisher import ensure_topics
from schemas.topics import positions_changelog
from tests.drills.harness import SEED, Pipeline, send, sent, size

SIZE = size()
CHUNKS = 3


@dataclass(frozen=True)
class Shape:
    citizens: int
    events_per_chunk: int
    restart_under_s: float
    #: How long a cold restore may wait for Kafka's cleaner (:func:`compacted`). At CI
    #: size the wait never reached its target (3 x live): 1,068 and 1,080 records before
    #: a 10 s wait and the same after it here, 1,526 and 1,056 after 30 s in a CI run
    #: (bench/results/quoted/restart-ci-2026-12-07.json). So CI reads them at once: the
    #: same assertions, on changelogs no more compacted than before.
    cleaner_wait_s: float


SHAPES = {"ci": Shape(300, 10_000, 5.0, 0.0), "full": Shape(100_000, 100_000, 10.0, 10.0)}
SHAPE = SHAPES[SIZE.name]
RESULTS_FILE = Path(__file__).resolve().parents[2] / "bench" / "results" / "restart.json"

pytestmark = [pytest.mark.drills, pytest.mark.timeout(SIZE.timeout_s * 4 + 600)]


def chunked(
    tmp: Path,
    citizens: int = SHAPE.citizens,
    per_chunk: int = SHAPE.events_per_chunk,
    chunks: int = CHUNKS,
) -> tuple[Any, list[Any]]:
    """The whole recording (for the oracle) and its chunks, in time order."""
    events = list(generate_events(SEED, citizens, count=per_chunk * chunks, sanctions=Oracle()))
    topics = {k: f"sensors.{k}" for k in SENSOR_KINDS}
    meta = {"seed": SEED, "citizens": citizens}
    write_simulation(tmp / "whole", events, 4, meta, topics)
    parts = []
    n = len(events) // chunks
    for i in range(chunks):
        piece = events[i * n : (i + 1) * n if i < chunks - 1 else len(events)]
        write_simulation(tmp / f"chunk-{i}", piece, 4, meta, topics)
        parts.append(open_recording(tmp / f"chunk-{i}"))
    return open_recording(tmp / "whole"), parts


def changelog_records(settings: Settings) -> int:
    """The records a worker without local state reads to restore: both changelogs
    (the doubles topic and the positions changelog), from their first offsets."""
    names = [settings.topics.doubles, positions_changelog(settings.processor.app_id)]
    consumer = KafkaConsumer(**settings.kafka.client_kwargs(), enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        count = 0
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500, max_records=10_000).values():
                count += len(records)
        return count
    finally:
        consumer.close()


def compacted(settings: Settings, live: int, within_s: float = 10.0) -> tuple[int, float]:
    """The changelogs' records once Kafka's cleaner has compacted them to about ``live``
    (thrice that: the segments still open are never compacted), or after ``within_s``;
    and the seconds waited (the broker's cleaner wakes every 15 s)."""
    started = time.monotonic()
    records = changelog_records(settings)
    while records > 3 * live and time.monotonic() - started < within_s:
        time.sleep(3.0)
        records = changelog_records(settings)
    return records, round(time.monotonic() - started, 1)


def restart(drill: Pipeline, i: int) -> float:
    """``kill -9`` worker ``i`` and start it again; seconds from start to ready."""
    pipeline.kill(drill.workers[i])
    return drill.start_worker(i)


@pytest.mark.parametrize(
    "store", ["rocksdb://"] if SIZE.name == "ci" else ["rocksdb://", "memory://"]
)
def test_restart_time_is_bounded_by_the_state(
    settings: Settings, tmp_path: Path, store: str
) -> None:
    settings = settings.replace(
        kafka={"partitions": 4},
        # instance_id: a restarted worker takes its place back at once, instead of
        # waiting for the group to drop the one killed (the rebalance timeout, whatever
        # the state)
        processor={"store": store, "instance_id": "restart-drill"},
        # compacted within the drill, not the hour
        topics={"compact_segment_s": 2.0, "compact_segment_bytes": 1024 * 1024},
    )
    whole, chunks = chunked(tmp_path / "recordings")
    drill = Pipeline(settings, tmp_path, whole, expected_doubles(whole))
    figures: dict[str, Any] = {"store": store, "size": SIZE.name, **SHAPE.__dict__}
    ensure_topics(settings)  # before the worker subscribes
    try:
        figures["first_start_s"] = round(drill.start_worker(0), 2)
        restarts, cold, stored = [], [], 0
        # what a restore needs at least: a double per citizen, a position per partition
        live = SHAPE.citizens + len(settings.topics.sensors) * settings.kafka.partitions
        for chunk in chunks:
            stored += sum(m["count"] for m in chunk.topics.values())
            sent(*send(chunk, settings), timeout=SIZE.timeout_s)
            drill.wait_progress(drill.applied, stored, SIZE.timeout_s)
            # twice, the quicker counted: a restart's time varies with the machine's load
            restarts.append(round(min(restart(drill, 0), restart(drill, 0)), 2))
            if chunk is chunks[0] or chunk is chunks[-1]:
                pipeline.kill(drill.workers.pop(0))
                records, waited = compacted(settings, live, SHAPE.cleaner_wait_s)
                took = drill.start_worker(9)
                cold.append({"records": records, "cleaner_wait_s": waited, "s": round(took, 2)})
                pipeline.kill(drill.workers.pop(9))
                drill.start_worker(0)
        figures.update(restarts_s=restarts, cold=cold, events=stored)
        drill.start_sink()
        result = drill.finish(f"restart ({store})", [], restarts, time.monotonic(), SIZE.timeout_s)
        figures["lost"], figures["duplicated"] = result.lost, result.duplicated
    finally:
        drill.close()
        write_figures(figures)
    # a cold restore reads about the live state, not three chunks' worth of versions
    # (its time is reported: faust's offset queries, not the records, dominate it)
    assert cold[-1]["records"] <= 2 * cold[0]["records"], figures
    assert cold[-1]["records"] < stored / 2, figures
    if store == "rocksdb://":
        first, third = restarts[0], restarts[-1]
        # 1.2 times, give or take faust's own offset query before "Worker ready", which
        # takes either almost nothing or about 1.4 s whatever the history (2.4 s, then
        # 3.8 s and 3.8 s in one CI-size run)
        assert third <= 1.2 * first + 1.5, figures
        assert third < SHAPE.restart_under_s, figures


def test_a_restart_on_the_embedded_broker_loses_nothing(
    tansu_settings: Settings, tmp_path: Path
) -> None:
    """On Tansu, whose ListOffsets is a batch behind its log, a worker killed between
    two chunks recovers to the changelogs' true ends (processors/engine/ends.py): before, a
    memory store lost the last batch's events, and a RocksDB one stopped at start."""
    s = tansu_settings.replace(kafka={"partitions": 4})
    whole, chunks = chunked(tmp_path / "recordings", citizens=200, per_chunk=4000, chunks=2)
    drill = Pipeline(s, tmp_path, whole, expected_doubles(whole))
    ensure_topics(s)
    try:
        drill.start_worker(0)
        stored = 0
        for chunk in chunks:
            stored += sum(m["count"] for m in chunk.topics.values())
            sent(*send(chunk, s), timeout=SIZE.timeout_s)
            drill.wait_progress(drill.applied, stored, SIZE.timeout_s)
            restart(drill, 0)
        drill.start_sink()
        drill.finish("restart on Tansu", [], [], time.monotonic(), SIZE.timeout_s)
    finally:
        drill.close()


def write_figures(figures: dict[str, Any]) -> None:
    runs = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else []
    runs = [
        r for r in runs if (r.get("store"), r.get("size")) != (figures["store"], figures["size"])
    ]
    runs.append({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **figures})
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(runs, indent=2) + "\n")
