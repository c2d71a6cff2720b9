"""P3: profiles/s of ``PostgresSink.write`` against psycopg 3 COPY into a temp table
and one upsert, on the same rows in the same batches."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench.harness import Result, isolate, say

if TYPE_CHECKING:
    from moisson.settings import Settings


def raw_upsert(url: str, schema: str, batches: list[list[dict[str, Any]]]) -> float:
    """COPY each batch into a temp table and upsert it: psycopg 3, no ORM."""
    import psycopg
    from psycopg.types.json import Jsonb

    from sinks.postgres.tables import PROFILE_FIELDS

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
    """P3 on the doubles of ``n`` citizens."""
    from processors.core.fold import Event, fold
    from producers.city import generate_events
    from sinks.postgres.writer import PostgresSink

    say(f"P3: folding doubles for {n:,} citizens")
    doubles: dict[str, Any] = {}
    for e in generate_events(17, n, count=n * 3):
        doubles[e.citizen_id] = fold(doubles.get(e.citizen_id), Event(e.kind, e.record))
    rows = list(doubles.values())
    bs = s.sink.batch_size
    batches = [rows[i : i + bs] for i in range(0, len(rows), bs)]
    url = s.database.sqlalchemy_url()
    a, b = isolate(s, "p3sink"), isolate(s, "p3raw")
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
