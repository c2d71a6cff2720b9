"""P4: send → row visible in PostgreSQL, p50/p95/p99, through a real worker and sink,
at half of P2's one-worker rate in the same run (gated), then at a fixed 500/s (a report)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import Result, isolate, say
from bench.measure import alive_check
from moisson.ops import pipeline

if TYPE_CHECKING:
    from moisson.settings import Settings


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
    """P4: ``seconds`` of events sent at ``at.rate`` through a worker and the sink."""
    import psycopg

    from moisson.resolvers import registry_client
    from producers.city import generate_events
    from producers.publisher import Pacer, Publisher, ensure_topics
    from sinks.postgres.writer import PostgresSink

    s = isolate(s, "p4")
    ensure_topics(s)
    PostgresSink(s.database.sqlalchemy_url(), s.database.schema_name).close()
    logs = {"worker": workdir / "p4-worker.log", "sink": workdir / "p4-sink.log"}
    ws = s.replace(processor={"data_dir": workdir / "faust-p4"})
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
        publisher = Publisher(s, registry=registry_client(s))
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
