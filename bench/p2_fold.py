"""P2: events/s of real faust workers folding a pre-loaded topic of mixed events,
against Quix Streams running the same planner (``bench/quix_fold.py``), a raw aiokafka
consume + decode loop, and (two workers) one worker. Every framework must have applied
every event (``bench/checks.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.checks import require_applied
from bench.harness import ROOT, Result, isolate, say
from bench.measure import CommitWatch, alive_check, end_offsets, preload, rss_bytes
from moisson.ops import pipeline

if TYPE_CHECKING:
    from moisson.settings import Settings


def raw_aiokafka(s: Settings, ends: dict[Any, int]) -> tuple[float, int]:
    """Consume + decode every message with aiokafka: the client's ceiling for this topic."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATP

    from schemas.codec import CodecError, decode

    want = {ATP(tp.topic, tp.partition): end for tp, end in ends.items() if end}

    async def run() -> tuple[float, int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka.bootstrap_servers,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            consumer.assign(list(want))
            await consumer.seek_to_beginning(*want)
            n, done = 0, set[Any]()
            started = time.perf_counter()
            while len(done) < len(want):
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                for tp, records in batches.items():
                    for r in records:
                        with contextlib.suppress(CodecError):
                            decode(r.value)
                        n += 1
                        if r.offset + 1 >= want[tp]:
                            done.add(tp)
            return n / (time.perf_counter() - started), n
        finally:
            await consumer.stop()

    return asyncio.run(run())


def run_faust(
    s: Settings, workers: int, ends: dict[Any, int], workdir: Path, timeout: float
) -> tuple[float, float, int, list[int]]:
    """Start ``workers`` real faust workers: (events/s, events per CPU-second, events, RSS)."""
    s = s.replace(processor={"app_id": f"{s.processor.app_id}-w{workers}-{uuid.uuid4().hex[:4]}"})
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    watch = CommitWatch(s, s.processor.app_id, ends)
    try:
        for i in range(workers):
            ws = s.replace(processor={"data_dir": workdir / f"faust-{s.processor.app_id}-{i}"})
            logs[f"worker{i}"] = workdir / f"{s.processor.app_id}-{i}.log"
            procs[f"worker{i}"] = pipeline.start_worker(ws, logs[f"worker{i}"])
        pids = tuple(p.pid for p in procs.values())
        rate, _, events = watch.rate(timeout, alive_check(procs, logs), pids)
        rss = [rss_bytes(p.pid) for p in procs.values()]
        return rate, events / max(watch.cpu_seconds, 1e-9), events, rss
    finally:
        watch.close()
        for p in procs.values():
            pipeline.stop(p)


def run_quix(
    s: Settings, ends: dict[Any, int], workdir: Path, timeout: float
) -> tuple[float, float, int]:
    """Run the Quix Streams baseline as a child process: (events/s, per CPU-second, events)."""
    group = f"{s.processor.app_id}-quix"
    log = workdir / "quix.log"
    state = workdir / "quix-state"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.quix_fold",
                s.kafka.bootstrap_servers,
                s.topics.prefix,
                group,
                str(state),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            start_new_session=True,
        )
    watch = CommitWatch(s, group, ends)
    try:
        rate, _, events = watch.rate(
            timeout, alive_check({"quix": proc}, {"quix": log}), (proc.pid,)
        )
        return rate, events / max(watch.cpu_seconds, 1e-9), events
    finally:
        watch.close()
        pipeline.stop(proc)


def p2(s: Settings, n: int, workdir: Path, faust_only: bool = False) -> list[Result]:
    """P2 on ``n`` events: one worker vs Quix, vs raw aiokafka, and two workers vs one
    (``faust_only``: one worker alone, for development)."""
    from producers.city import generate_events

    s = isolate(s, "p2")
    # The doubles topic is the doubles table's changelog: a second faust run on the same
    # topics would recover the first run's doubles and find every event a duplicate. So
    # the two-worker run gets its own topics (every output too), holding the same events.
    s2 = isolate(s, "p2two")
    say(f"P2: generating and pre-loading {n:,} mixed sensor events")
    events = [
        (e.kind, e.citizen_id.encode(), e.encode()) for e in generate_events(13, 10_000, count=n)
    ]
    for target in (s,) if faust_only else (s, s2):
        preload(target, ((target.topics.sensor(k), key, value) for k, key, value in events))
    del events
    ends = end_offsets(s, s.topics.sensors)
    assert sum(ends.values()) == n, (sum(ends.values()), n)
    timeout = max(600.0, n / 500)

    say("P2: one faust worker")
    one, one_cpu, _, one_rss = run_faust(s, 1, ends, workdir, timeout)
    say(f"P2: faust ×1 {one:,.0f} ev/s; checking it applied every event")
    require_applied(s, "faust ×1", s.topics.doubles, n)
    if faust_only:  # development: the baselines are skipped, the ratios are not real
        return [
            Result(
                "P2 faust only",
                round(one),
                "events/s",
                None,
                None,
                "dev",
                None,
                {"events_per_cpu_s": round(one_cpu), "applied": n},
            )
        ]
    ends2 = end_offsets(s2, s2.topics.sensors)
    one_set, two_set = (  # the same events in the same partitions on both sets of topics
        {(t.topics.sensors.index(tp.topic), tp.partition): end for tp, end in e.items()}
        for t, e in ((s, ends), (s2, ends2))
    )
    assert one_set == two_set, (one_set, two_set)
    say("P2: raw aiokafka consume + decode")
    raw_rate, raw_n = raw_aiokafka(s, ends)
    say(f"P2: raw {raw_rate:,.0f} ev/s; Quix Streams")
    quix_rate, quix_cpu, _ = run_quix(s, ends, workdir, timeout)
    say(f"P2: Quix {quix_rate:,.0f} ev/s; checking it applied every event")
    require_applied(s, "Quix Streams", f"{s.topics.prefix}quix.doubles", n)
    say("P2: two faust workers")
    two, two_cpu, _, _ = run_faust(s2, 2, ends2, workdir, timeout)
    say(f"P2: faust ×2 {two:,.0f} ev/s; checking they applied every event")
    require_applied(s2, "faust ×2", s2.topics.doubles, n)
    cores = os.cpu_count() or 1
    common = {
        "events": n,
        "citizens": 10_000,
        "cores": cores,
        "partitions": s.kafka.partitions,
        "applied": n,  # checked for every framework: the latest doubles' versions sum to n
    }
    return [
        Result(
            "P2 processor vs Quix",
            round(one),
            "events/s",
            round(quix_rate),
            round(one / quix_rate, 3),
            "≥ 1.0 × Quix Streams",
            one / quix_rate >= 1.0,
            {
                **common,
                "faust_events_per_cpu_s": round(one_cpu),
                "quix_events_per_cpu_s": round(quix_cpu),
                "ratio_per_cpu_s": round(one_cpu / quix_cpu, 3),
            },
        ),
        Result(
            "P2 processor vs raw",
            round(one),
            "events/s",
            round(raw_rate),
            round(one / raw_rate, 3),
            "report",
            None,
            {**common, "baseline": "aiokafka consume + Avro decode", "read": raw_n},
        ),
        Result(
            "P2 two workers",
            round(two),
            "events/s",
            round(one),
            round(two / one, 3),
            "≥ 1.7 × one worker (when cores allow)",
            two / one >= 1.7,
            {
                **common,
                "note": f"{cores} cores shared with the broker and PostgreSQL; the two"
                " workers read their own topics holding the same events",
                "one_worker_rss_mb": round(one_rss[0] / 2**20),
                "events_per_cpu_s_one": round(one_cpu),
                "events_per_cpu_s_two": round(two_cpu),
            },
        ),
    ]
