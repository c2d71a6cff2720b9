"""moisson's benchmark suite: every figure a ratio against a raw limit measured in the same run.

Starts Apache Kafka and PostgreSQL with the project's own stack code (as the tests do;
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point it at running ones instead), then measures:

  P1 sensors publish    generation + Avro + Publisher  vs raw kafka-python sends
  P2 processor          one faust worker               vs Quix Streams, raw aiokafka loop
                        two faust workers              vs one
  P3 sink               PostgresSink.write             vs COPY into a temp table + upsert
  P4 end to end         send → row in PostgreSQL       p50/p95/p99 at a steady rate
  P5 memory             worker RSS per citizen         memory vs RocksDB store
  P6 replay             replay --speed max             vs P1's raw limit
  G  growth (pure)       one citizen at 100k events     vs the same at 10k (no services)

Writes bench/results/latest.json and prints a table. Not a test: numbers depend on the machine.

    .venv/bin/python bench/run.py              # the full run (P2 on 500k events)
    .venv/bin/python bench/run.py --quick      # a short development run
    .venv/bin/python bench/run.py --only P2,P3
    .venv/bin/python bench/run.py --only G     # starts no services
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.checks import require_applied
from bench.common import Result
from bench.growth import growth
from moisson import pipeline
from moisson.settings import SENSOR_KINDS, Settings
from moisson.stack.provision import isolated, provide

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results"
console = Console()


@dataclass
class Sizes:
    p1: int
    p2: int
    p3: int
    p4_seconds: float
    p4_rate: int  # only without P2 in the run (not gated): else half of P2's one worker
    p5: tuple[int, ...]
    p6: int
    g: int  # events of one citizen's history (part G; its baseline is a tenth of it)


FULL = Sizes(
    p1=200_000,
    p2=500_000,
    p3=50_000,
    p4_seconds=120,
    p4_rate=5000,
    p5=(100_000, 1_000_000),
    p6=200_000,
    g=100_000,
)
QUICK = Sizes(
    p1=50_000,
    p2=100_000,
    p3=10_000,
    p4_seconds=20,
    p4_rate=5000,
    p5=(100_000,),
    p6=50_000,
    g=50_000,
)


def say(msg: str) -> None:
    console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {msg}")


# --- services ------------------------------------------------------------------------


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[Settings]:
    """Kafka and PostgreSQL: given by env vars, else started by moisson.stack."""
    with provide(Settings(), workdir, say=say) as s:
        s.processor.data_dir = workdir / "faust"
        yield s


def fresh(s: Settings, name: str) -> Settings:
    """A copy of ``s`` with its own topics, consumer groups and schema; the processor
    runs with the shipped defaults: what users run."""
    return isolated(s, f"bench-{name}", uuid.uuid4().hex[:6])


# --- helpers -------------------------------------------------------------------------


def city_events(n: int, citizens: int = 10_000, seed: int = 7) -> list[Any]:
    from producers.city import generate_events

    return list(generate_events(seed, citizens, count=n))


def raw_producer(s: Settings) -> Any:
    from producers.publisher import make_producer

    return make_producer(s)


def preload(s: Settings, payloads: Iterable[tuple[str, bytes, bytes]]) -> float:
    """Send (topic, key, value) with the tuned producer; return the seconds it took."""
    from producers.publisher import ensure_topics

    ensure_topics(s)
    producer = raw_producer(s)
    started = time.perf_counter()
    for topic, key, value in payloads:
        producer.send(topic, key=key, value=value)
    producer.flush()
    took = time.perf_counter() - started
    producer.close()
    return took


def end_offsets(s: Settings, topics: list[str]) -> dict[Any, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**s.kafka.client_kwargs())
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
        ]
        return dict(consumer.end_offsets(parts))
    finally:
        consumer.close()


class CommitWatch:
    """Follows a consumer group's committed offsets on the sensor topics."""

    def __init__(self, s: Settings, group: str, ends: dict[Any, int]) -> None:
        from kafka import KafkaAdminClient

        self.admin = KafkaAdminClient(**s.kafka.client_kwargs())
        self.group, self.ends = group, ends
        self.total = sum(ends.values())
        self.cpu_seconds = 0.0

    def committed(self) -> int:
        from kafka.errors import KafkaError

        try:
            got = self.admin.list_group_offsets(self.group).get(self.group, {})
        except KafkaError:  # the group may not exist yet
            return 0
        return sum(max(0, got[tp].offset) for tp in self.ends if tp in got)

    def rate(
        self,
        timeout: float,
        alive: Callable[[], str | None] = lambda: None,
        pids: tuple[int, ...] = (),
    ) -> tuple[float, float, int]:
        """(events/s, seconds, events) between the first commit and the last one.

        Both ends are commits, so startup and the final commit interval do not count
        and the same rule applies to every framework measured this way. The CPU seconds
        ``pids`` spent in between land in ``self.cpu_seconds`` (the machine is shared).
        """
        first: tuple[float, int] | None = None
        cpu0 = 0.0
        last_n, last_change = -1, time.monotonic()
        deadline = time.monotonic() + timeout
        last_print = 0.0
        while True:
            n = self.committed()
            now = time.monotonic()
            if n > 0 and first is None:
                first = (now, n)
                cpu0 = cpu_seconds(pids)
            if n >= self.total:
                self.cpu_seconds = cpu_seconds(pids) - cpu0
                break
            problem = alive()
            if problem:
                raise RuntimeError(problem)
            if n != last_n:
                last_n, last_change = n, now
            if now > deadline or now - last_change > 90:
                raise TimeoutError(
                    f"{self.group}: {n:,}/{self.total:,} committed, no progress for"
                    f" {now - last_change:.0f}s (every event must be committed)"
                )
            if now - last_print > 10:
                say(f"  {self.group}: {n:,}/{self.total:,} committed")
                last_print = now
            time.sleep(0.2)
        assert first is not None
        seconds = max(now - first[0], 1e-9)
        events = self.total - first[1]
        if events <= 0:  # everything landed in one commit: fall back to the whole span
            events, seconds = self.total, seconds
        return events / seconds, seconds, events

    def close(self) -> None:
        self.admin.close()


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User + system CPU seconds of ``pids`` and their children so far."""
    import psutil

    total = 0.0
    for pid in pids:
        proc = psutil.Process(pid)
        for p in (proc, *proc.children(recursive=True)):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def distinct_keys(s: Settings, topic: str) -> int:
    """How many distinct keys ``topic`` holds (read from the start)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**s.kafka.client_kwargs(), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        consumer.seek_to_beginning()
        keys: set[bytes] = set()
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for records in consumer.poll(timeout_ms=500).values():
                keys.update(r.key for r in records)
        return len(keys)
    finally:
        consumer.close()


def rss_bytes(pid: int) -> int:
    import psutil

    proc = psutil.Process(pid)
    return int(proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(True)))


def alive_check(procs: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path]):
    def alive() -> str | None:
        for name, proc in procs.items():
            if proc.poll() is not None:
                tail = logs[name].read_text(errors="replace")[-2000:]
                return f"{name} exited with {proc.returncode}:\n{tail}"
        return None

    return alive


# --- P1 ------------------------------------------------------------------------------


def p1(s: Settings, n: int) -> tuple[Result, float]:
    from producers.city import generate_events
    from producers.publisher import Publisher, ensure_topics

    say(f"P1: encoding {n:,} events for the raw baseline")
    raw_s = fresh(s, "p1raw")
    moi_s = fresh(s, "p1moisson")
    ensure_topics(raw_s)
    ensure_topics(moi_s)
    payloads = [
        (raw_s.topics.sensor(e.kind), e.citizen_id.encode(), e.encode())
        for e in generate_events(11, 10_000, count=n)
    ]
    say("P1: raw kafka-python sends")
    raw_seconds = preload(raw_s, payloads)
    raw_rate = n / raw_seconds
    del payloads
    say("P1: moisson sensors path (generate + Avro + Publisher)")
    publisher = Publisher(moi_s)
    started = time.perf_counter()
    sent = publisher.publish(generate_events(11, 10_000, count=n))
    moi_seconds = time.perf_counter() - started
    publisher.close()
    rate = sent / moi_seconds
    ratio = rate / raw_rate
    return (
        Result(
            "P1 sensors publish",
            round(rate),
            "events/s",
            round(raw_rate),
            round(ratio, 3),
            "≥ 0.9 × raw kafka-python",
            ratio >= 0.9,
            {"events": n, "baseline": "kafka-python sends of the same pre-encoded payloads"},
        ),
        raw_rate,
    )


# --- P2 ------------------------------------------------------------------------------


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
    s = s.model_copy(deep=True)
    s.processor.app_id = f"{s.processor.app_id}-w{workers}-{uuid.uuid4().hex[:4]}"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    watch = CommitWatch(s, s.processor.app_id, ends)
    try:
        for i in range(workers):
            ws = s.model_copy(deep=True)
            ws.processor.data_dir = workdir / f"faust-{s.processor.app_id}-{i}"
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
    group = f"{s.processor.app_id}-quix"
    log = workdir / "quix.log"
    state = workdir / "quix-state"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "quix_fold.py"),
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
    from producers.city import generate_events

    s = fresh(s, "p2")
    # The doubles topic is the doubles table's changelog: a second faust run on the same
    # topics would recover the first run's doubles and find every event a duplicate. So
    # the two-worker run gets its own topics (every output too), holding the same events.
    s2 = fresh(s, "p2two")
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


# --- P3 ------------------------------------------------------------------------------


def raw_upsert(url: str, schema: str, batches: list[list[dict[str, Any]]]) -> float:
    """COPY each batch into a temp table and upsert it: psycopg 3, no ORM."""
    import psycopg
    from psycopg.types.json import Jsonb

    from sinks.postgres import PROFILE_FIELDS

    url = url.replace("postgresql+psycopg://", "postgresql://")
    cols = ", ".join(PROFILE_FIELDS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in PROFILE_FIELDS if c != "citizen_id")
    jsonb = {"places", "purchases", "books", "sightings", "associates", "rule_hits"}
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for batch in batches:
            with conn.transaction():
                conn.execute(
                    f"CREATE TEMP TABLE incoming (LIKE {schema}.citizen_profiles "
                    "INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                with conn.cursor().copy(f"COPY incoming ({cols}) FROM STDIN") as copy:
                    for d in batch:
                        copy.write_row(
                            [Jsonb(d[f]) if f in jsonb else d[f] for f in PROFILE_FIELDS]
                        )
                conn.execute(
                    f"INSERT INTO {schema}.citizen_profiles ({cols}, updated_at) "
                    f"SELECT {cols}, now() FROM incoming "
                    f"ON CONFLICT (citizen_id) DO UPDATE SET {updates}, updated_at = now() "
                    f"WHERE {schema}.citizen_profiles.version < EXCLUDED.version"
                )
        return time.perf_counter() - started


def p3(s: Settings, n: int) -> Result:
    from processors.fold import Event, fold
    from producers.city import generate_events
    from sinks.postgres import PostgresSink

    say(f"P3: folding doubles for {n:,} citizens")
    doubles: dict[str, Any] = {}
    for e in generate_events(17, n, count=n * 3):
        doubles[e.citizen_id] = fold(doubles.get(e.citizen_id), Event(e.kind, e.record))
    rows = list(doubles.values())
    bs = s.sink.batch_size
    batches = [rows[i : i + bs] for i in range(0, len(rows), bs)]
    url = s.database.sqlalchemy_url()
    a, b = fresh(s, "p3sink"), fresh(s, "p3raw")
    sink = PostgresSink(url, a.database.schema_name)
    PostgresSink(url, b.database.schema_name).close()  # the raw side's empty tables
    say("P3: raw COPY + upsert")
    raw_seconds = raw_upsert(url, b.database.schema_name, batches)
    say("P3: PostgresSink.write")
    started = time.perf_counter()
    written = sum(sink.write(batch) for batch in batches)
    sink_seconds = time.perf_counter() - started
    sink.close()
    assert written == len(rows), (written, len(rows))
    rate, raw_rate = len(rows) / sink_seconds, len(rows) / raw_seconds
    ratio = rate / raw_rate
    ledger = sum(len(d["ledger"]) for d in rows)
    return Result(
        "P3 sink",
        round(rate),
        "profiles/s",
        round(raw_rate),
        round(ratio, 3),
        "≥ 0.5 × raw COPY + upsert",
        ratio >= 0.5,
        {
            "profiles": len(rows),
            "batch": bs,
            "ledger_rows": ledger,
            "note": "the sink also writes ledger and blacklist rows; the baseline only profiles",
        },
    )


# --- P4 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class P4Rate:
    """The rate P4 sends at, whether the p99 ≤ 1 s gate applies there, and why."""

    rate: int
    gated: bool
    how: str  # how the rate was chosen (recorded in the result)
    target: str


def p4_rate(p2_one: float | None, fallback: int) -> P4Rate:
    """Half of what one faust worker sustained in P2 of the same run: the gate asks for
    low latency with headroom, on this machine. Without P2 in the run there is no such
    rate: P4 then runs at ``fallback`` as a report and refuses to gate."""
    if p2_one is None or p2_one <= 0:
        return P4Rate(
            fallback,
            False,
            f"P2 gave no one-worker rate in this run: the fallback {fallback:,}/s",
            "not gated: the gate's rate is ½ × P2's one-worker rate, so it needs P2"
            " in the same run",
        )
    return P4Rate(
        max(1, round(p2_one / 2)),
        True,
        f"½ × P2's one faust worker in this run ({round(p2_one):,} events/s)",
        "p99 ≤ 1 s at ½ × P2's one worker",
    )


#: The second P4 step: what latency the pipeline gives at a rate this machine sustains.
P4_LOW = P4Rate(500, False, "fixed 500/s", "report (fixed 500/s)")


def p4(s: Settings, seconds: float, at: P4Rate, workdir: Path) -> Result:
    import psycopg

    from producers.city import generate_events
    from producers.publisher import Pacer, Publisher, ensure_topics
    from sinks.postgres import PostgresSink

    s = fresh(s, "p4")
    ensure_topics(s)
    PostgresSink(s.database.sqlalchemy_url(), s.database.schema_name).close()
    logs = {"worker": workdir / "p4-worker.log", "sink": workdir / "p4-sink.log"}
    ws = s.model_copy(deep=True)
    ws.processor.data_dir = workdir / "faust-p4"
    worker, _ = pipeline.start_worker_ready(ws, logs["worker"], timeout=180)
    sink = pipeline.start_sink(s, logs["sink"])
    procs = {"worker": worker, "sink": sink}
    alive = alive_check(procs, logs)
    rate = at.rate
    n = int(seconds * rate)
    say(f"P4: {n:,} events at {rate:,}/s ({at.how}) through worker and sink")
    events = list(generate_events(19, 20_000, count=n))
    sends: dict[str, list[float]] = {}
    url = s.database.sqlalchemy_url().replace("postgresql+psycopg://", "postgresql://")
    latencies: list[float] = []
    seen: dict[str, int] = {}
    schema = s.database.schema_name

    polls: list[float] = []  # seconds each poll took: the poller shares the sender's loop

    def poll(conn: Any) -> None:
        now = time.time()
        started = time.perf_counter()
        for cid, version in conn.execute(
            f"SELECT citizen_id, version FROM {schema}.citizen_profiles "
            "WHERE updated_at > now() - interval '5 seconds'"
        ):
            before = seen.get(cid, 0)
            if version > before:
                latencies.extend(now - t for t in sends[cid][before:version])
                seen[cid] = version
        polls.append(time.perf_counter() - started)

    try:
        publisher = Publisher(s)
        pacer = Pacer(0, rate)
        with psycopg.connect(url, autocommit=True) as conn:
            next_poll = time.monotonic()
            first_send = time.monotonic()
            for e in events:
                pacer.wait(e)
                sends.setdefault(e.citizen_id, []).append(time.time())
                publisher.send(e)
                if time.monotonic() >= next_poll:
                    poll(conn)
                    next_poll = time.monotonic() + 0.1
            publisher.producer.flush()
            last_send = time.monotonic()
            deadline = time.monotonic() + 60
            while len(latencies) < n and time.monotonic() < deadline:
                poll(conn)
                if problem := alive():
                    raise RuntimeError(problem)
                time.sleep(0.1)
        publisher.close()
    finally:
        pipeline.stop(sink)
        pipeline.stop(worker)
    sent_rate = n / (last_send - first_send)
    arrived = len(latencies)
    # Events still missing at the deadline count as infinitely late: never flattering.
    ordered = sorted(latencies) + [math.inf] * (n - arrived)

    def pct(q: float) -> float | None:
        v = ordered[min(n - 1, int(q * n))]
        return None if math.isinf(v) else round(v, 3)

    p50, p95, p99 = pct(0.50), pct(0.95), pct(0.99)
    return Result(
        f"P4 end to end p99 at {rate:,}/s",
        p99,  # None: more than 1% never arrived
        "s",
        None,
        None,
        at.target,
        (p99 is not None and p99 <= 1.0) if at.gated else None,
        {
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "arrived": arrived,
            "events": n,
            "target_rate": rate,
            "rate_derivation": at.how,
            "gated": at.gated,
            "sent_rate": round(sent_rate),
            "seconds": seconds,
            "poll_ms_mean": round(1000 * sum(polls) / max(1, len(polls)), 1),
            "poll_ms_max": round(1000 * max(polls, default=0.0), 1),
            "note": "send time to the poll (every 0.1 s) that saw the row: an upper bound;"
            " null = not arrived within 60 s after the last send",
        },
    )


# --- P5 ------------------------------------------------------------------------------


def synthetic_payloads(s: Settings, citizens: int) -> Iterator[tuple[str, bytes, bytes]]:
    """One real sensor event per citizen: city templates with fresh ids."""
    templates = city_events(200, citizens=50)
    for i in range(citizens):
        t = templates[i % len(templates)]
        cid = f"c{i:08d}"
        record = {**t.record, "citizen_id": cid, "event_id": str(uuid.UUID(int=i + 1))}
        if "companions" in record:
            record["companions"] = []
        from producers.city import SensorEvent

        yield (s.topics.sensor(t.kind), cid.encode(), SensorEvent(t.kind, record).encode())


def p5(
    s: Settings,
    sizes: tuple[int, ...],
    workdir: Path,
    stores: tuple[str, ...] = ("memory://", "rocksdb://"),
) -> list[Result]:
    results = []
    for citizens in sizes:
        rss: dict[str, float] = {}
        for store in stores:
            st = fresh(s, f"p5{citizens}")
            st.processor.store = store
            say(f"P5: {citizens:,} citizens, store {store}")
            preload(st, list(synthetic_payloads(st, citizens)))
            ends = end_offsets(st, st.topics.sensors)
            logs = {"worker": workdir / f"p5-{citizens}-{store[:3]}.log"}
            ws = st.model_copy(deep=True)
            ws.processor.data_dir = workdir / f"faust-p5-{citizens}-{store[:3]}"
            worker, _ = pipeline.start_worker_ready(ws, logs["worker"], timeout=180)
            try:
                idle = rss_bytes(worker.pid)
                watch = CommitWatch(st, st.processor.app_id, ends)
                try:
                    watch.rate(max(900.0, citizens / 200), alive_check({"worker": worker}, logs))
                finally:
                    watch.close()
                time.sleep(3)
                full = rss_bytes(worker.pid)
                doubles = distinct_keys(st, st.topics.doubles)
                if doubles != citizens:
                    raise RuntimeError(f"P5: {doubles:,} doubles for {citizens:,} citizens")
            finally:
                pipeline.stop(worker)
            rss[store] = (full - idle) / citizens
            shutil.rmtree(ws.processor.data_dir, ignore_errors=True)
        mem, rocks = rss.get("memory://", math.nan), rss.get("rocksdb://", math.nan)
        if math.isnan(rocks):
            continue
        mem_known = not math.isnan(mem)
        results.append(
            Result(
                f"P5 memory {citizens // 1000}k citizens",
                round(rocks),
                "bytes/citizen (RocksDB)",
                round(mem) if mem_known else None,
                round(rocks / mem, 3) if mem_known and mem > 0 else None,
                "≤ 2 KiB per citizen with RocksDB",
                rocks <= 2048,
                {
                    "citizens": citizens,
                    "events_per_citizen": 1,
                    "memory_store_bytes_per_citizen": round(mem) if mem_known else None,
                    "note": "worker RSS loaded minus RSS when ready; baseline: memory store",
                },
            )
        )
    return results


# --- P6 ------------------------------------------------------------------------------


def p6(s: Settings, n: int, raw_rate: float, workdir: Path) -> Result:
    from moisson.recording import open_recording, write_simulation
    from moisson.replay import plan_replay, replay
    from producers.city import generate_events

    s = fresh(s, "p6")
    out = workdir / "recording"
    say(f"P6: recording {n:,} simulated events")
    write_simulation(
        out,
        generate_events(23, 10_000, count=n),
        s.kafka.partitions,
        {"seed": 23},
        {k: s.topics.sensor(k) for k in SENSOR_KINDS},
    )
    rec = open_recording(out)
    plan = plan_replay(rec, s)
    say("P6: replay --speed max")
    summary = replay(
        plan,
        s,
        speed=0,
        recorded_partitions={t: m["partitions"] for t, m in rec.topics.items()},
    )
    rate = summary.sent / summary.seconds
    ratio = rate / raw_rate
    return Result(
        "P6 replay",
        round(rate),
        "events/s",
        round(raw_rate),
        round(ratio, 3),
        "≥ 0.8 × P1 raw limit",
        ratio >= 0.8,
        {"events": summary.sent},
    )


# --- main ----------------------------------------------------------------------------


def show(results: list[Result], meta: dict[str, Any]) -> None:
    table = Table(title=f"moisson bench — {meta['date']} — {meta['cores']} cores")
    for col in ("id", "value", "baseline", "ratio", "target", "met"):
        table.add_column(col)
    for r in results:
        met = "—" if r.met is None else ("[green]yes[/green]" if r.met else "[red]no[/red]")
        table.add_row(
            r.id,
            "—" if r.value is None else f"{r.value:,} {r.unit}",
            "—" if r.baseline is None else f"{r.baseline:,}",
            "—" if r.ratio is None else f"{r.ratio:.3f}",
            r.target,
            met,
        )
    console.print(table)


SERVICE_PARTS = {"P1", "P2", "P3", "P4", "P5", "P6"}


def attempt(name: str, step: Callable[[], Any]) -> Any:
    """Run one part; a failure becomes a failed Result, so the other parts still run."""
    try:
        return step()
    except Exception as exc:  # one part failing must not lose the others
        console.print_exception()
        return Result(name, None, "", None, None, "ran", False, {"error": repr(exc)})


def listed(got: Result | list[Result]) -> list[Result]:
    return got if isinstance(got, list) else [got]


def run_services(
    workdir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    only: set[str],
    results: list[Result],
    meta: dict[str, Any],
) -> None:
    """The parts that need Kafka and PostgreSQL, in order (P4 uses P2's figure, P6 P1's)."""
    with services(workdir) as s:
        raw_rate = None
        p2_one: float | None = None  # read by P4's step when it runs, after P2's
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("P1", lambda: p1(s, sizes.p1)),
            ("P2", lambda: p2(s, sizes.p2, workdir, args.p2_faust_only)),
            ("P3", lambda: p3(s, sizes.p3)),
            ("P4", lambda: p4(s, sizes.p4_seconds, p4_rate(p2_one, sizes.p4_rate), workdir)),
            ("P4", lambda: p4(s, min(60, sizes.p4_seconds), P4_LOW, workdir)),
            ("P5", lambda: p5(s, sizes.p5, workdir, tuple(args.p5_stores.split(",")))),
        ]
        for name, step in steps:
            if name not in only and not (name == "P1" and "P6" in only):
                continue
            got = attempt(name, step)
            if name == "P1" and isinstance(got, tuple):
                got, raw_rate = got
            got = listed(got)
            if name == "P2":  # its first result is one faust worker's rate (None: failed)
                p2_one = got[0].value
            results.extend(got)
            write(results, meta)
        if "P6" in only and raw_rate is not None:
            rate = raw_rate
            results.extend(listed(attempt("P6", lambda: p6(s, sizes.p6, rate, workdir))))
            write(results, meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Smaller sizes (P2 100k, P4 20 s, G 50k).")
    ap.add_argument("--only", default="G,P1,P2,P3,P4,P5,P6", help="Comma-separated parts to run.")
    ap.add_argument("--p2-events", type=int, help="Override P2's event count.")
    ap.add_argument(
        "--p2-faust-only", action="store_true", help="Development: P2's faust worker alone."
    )
    ap.add_argument("--p4-seconds", type=float, help="Override P4's duration.")
    ap.add_argument("--g-events", type=int, help="Override G's history (baseline: a tenth).")
    ap.add_argument(
        "--p5-citizens", help="Override P5's sizes, comma-separated (e.g. 100000,1000000)."
    )
    ap.add_argument(
        "--p5-stores", default="memory://,rocksdb://", help="P5's faust stores, comma-separated."
    )
    ap.add_argument(
        "--markdown", action="store_true", help="Print latest.json as a Markdown table and exit."
    )
    args = ap.parse_args()
    if args.markdown:
        latest = RESULTS / "latest.json"
        if not latest.exists():
            sys.exit(f"error: no {latest} yet\nfix: run a bench first (make bench ARGS=--quick)")
        print(markdown(json.loads(latest.read_text())))
        return
    sizes = QUICK if args.quick else FULL
    if args.p2_events:
        sizes.p2 = args.p2_events
    if args.p4_seconds:
        sizes.p4_seconds = args.p4_seconds
    if args.g_events:
        sizes.g = args.g_events
    if args.p5_citizens:
        sizes.p5 = tuple(int(x) for x in args.p5_citizens.split(","))
    only = {p.strip().upper() for p in args.only.split(",")}
    workdir = Path(tempfile.mkdtemp(prefix="moisson-bench-"))
    results: list[Result] = []
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "mode": "quick" if args.quick else "full",
        "sizes": asdict(sizes),
    }
    RESULTS.mkdir(exist_ok=True)
    try:
        if "G" in only:  # pure and in-process: it needs no services, so it runs first
            say(f"G: one citizen's history, {sizes.g // 10:,} against {sizes.g:,} events")
            results.extend(listed(attempt("G", lambda: growth(sizes.g))))
            write(results, meta)
        if only & SERVICE_PARTS:
            run_services(workdir, sizes, args, only, results, meta)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    show(results, meta)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results as the README's table."""

    def num(v: Any) -> str:
        return "—" if v is None else f"{v:,}"

    lines = ["| id | value | baseline | ratio | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        value = "—" if r["value"] is None else f"{r['value']:,} {r['unit']}"
        lines.append(
            f"| {r['id']} | {value} | {num(r['baseline'])} | {num(r['ratio'])} |"
            f" {r['target']} | {met} |"
        )
    return "\n".join(lines)


def write(results: list[Result], meta: dict[str, Any]) -> None:
    rows = [{**asdict(r), "meta": meta} for r in results]
    (RESULTS / "latest.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
