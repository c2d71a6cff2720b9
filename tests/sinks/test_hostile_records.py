"""One record the database refuses never stops the sink (real Kafka and PostgreSQL):
each hostile record is set aside on the sink's dead-letter topic with its reason, the
good records around it are written, the sink commits past it, and a killed database
connection is still retried with nothing lost."""

from __future__ import annotations

import random
import string
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from moisson.metrics import SinkMetrics
from moisson.ops import pipeline
from moisson.ops.dlq import read_dead_letters
from moisson.settings import Settings
from processors.core.fold import fold_all
from producers.publisher import ensure_topics
from schemas.codec import DOUBLE, LEDGER, METRO, encode
from sinks.base import Record, Refusal, SinkBatch
from sinks.dead_letters import DeadLetterTopic
from sinks.postgres.reader import PostgresReader
from sinks.postgres.writer import PostgresSink
from sinks.runner import make_consumer, run_sink
from sinks.writes import Item, SinkStats, write_items
from tests.factories import Msg, ev

pytestmark = pytest.mark.integration

REFUSE_ME = "REFUSE-ME"


def good_harvest(citizens: int, first: int = 0) -> SinkBatch:
    """The processor's outputs for ``citizens`` citizens, one of them blacklisted."""
    events = [
        ev("payment", citizen=f"c{i:07d}", hours=i, category="FINES")
        for i in range(first, first + citizens)
    ]
    events += [
        ev("camera", citizen=f"c{first:07d}", hours=100 + h, behaviour="GATHERING")
        for h in range(14)
    ]
    return SinkBatch.of(fold_all(events).values())


def sends(h: SinkBatch, settings: Settings) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of each record of ``h``, as the processor sends them."""
    from schemas.codec import BLACKLIST

    t = settings.topics
    return [
        *((t.doubles, d["citizen_id"].encode(), encode(DOUBLE, d)) for d in h.doubles),
        *((t.ledger, e["citizen_id"].encode(), encode(LEDGER, e)) for e in h.ledger),
        *((t.blacklist, b["citizen_id"].encode(), encode(BLACKLIST, b)) for b in h.blacklist),
    ]


def hostile(h: SinkBatch, settings: Settings) -> list[tuple[str, bytes, bytes, str]]:
    """One record of each hostile kind, (topic, key, value, the reason it deserves)."""
    from schemas.codec import BLACKLIST

    t, e, b = settings.topics, h.ledger[1], h.blacklist[0]
    # A citizen of its own: never merged with (or hidden behind) a good double.
    d = {**h.doubles[1], "citizen_id": "c-hostile"}
    long_id = "".join(random.choices(string.ascii_letters, k=3000))  # no compression helps
    return [
        (t.doubles, b"x", encode(DOUBLE, {**d, "score": 2**40}), "out-of-range"),
        (t.doubles, b"x", encode(DOUBLE, {**d, "citizen_id": long_id}), "too-long"),
        (t.doubles, b"x", encode(DOUBLE, {**d, "books": {"T\x00": 1}}), "nul-character"),
        (t.doubles, b"x", encode(DOUBLE, {**d, "tier": REFUSE_ME}), "database-refused"),
        (t.ledger, b"x", encode(LEDGER, {**e, "delta": 2**40}), "out-of-range"),
        (t.ledger, b"x", encode(LEDGER, {**e, "rule_id": "made.up"}), "unknown-rule"),
        (t.blacklist, b"x", encode(BLACKLIST, {**b, "score_at_entry": 2**35}), "out-of-range"),
        (t.doubles, b"x", b"not avro at all", "not-single-object"),
        (t.ledger, b"x", encode(METRO, dict(ev("metro").record)), "not-a-sink-record"),
    ]


def produce(settings: Settings, records) -> None:
    producer = KafkaProducer(**settings.kafka.client_kwargs())
    for topic, key, value, *_ in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def refusing_sink(settings: Settings) -> PostgresSink:
    """The sink, with a CHECK constraint standing for what no check can foresee."""
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    with pg.engine.begin() as conn:
        conn.execute(
            text(
                f"ALTER TABLE {pg._schema_sql()}.citizen_profiles ADD CONSTRAINT refuse_me"
                f" CHECK (tier <> '{REFUSE_ME}')"
            )
        )
    return pg


def drain(settings, pg, want: int, metrics: SinkMetrics, timeout: float = 60) -> SinkStats:
    """Run the sink until it consumed ``want`` records (fails after ``timeout``)."""
    consumer = make_consumer(
        [settings.topics.doubles, settings.topics.ledger, settings.topics.blacklist],
        settings.sink.group_id,
        **settings.kafka.client_kwargs(),
    )
    producer = KafkaProducer(**settings.kafka.client_kwargs())
    seen = SinkStats()
    deadline = time.monotonic() + timeout

    def keep(stats: SinkStats) -> None:
        nonlocal seen
        seen = stats

    stats = run_sink(
        consumer,
        pg,
        batch_size=25,  # several batches: the hostile records sit between good ones
        should_stop=lambda: seen.consumed >= want or time.monotonic() > deadline,
        on_batch=keep,
        retry_max_s=2.0,
        metrics=metrics,
        dead_letters=DeadLetterTopic(producer, settings.topics.names.sink_dlq),
    )
    consumer.close()
    producer.close()
    assert stats.consumed == want, f"consumed {stats.consumed} of {want} in {timeout}s"
    return stats


def lag(settings: Settings) -> int:
    """Records of the three topics past the sink group's committed offsets."""
    probe = KafkaConsumer(
        **settings.kafka.client_kwargs(), group_id=settings.sink.group_id, enable_auto_commit=False
    )
    t = settings.topics
    parts = [
        TopicPartition(topic, p)
        for topic in (t.doubles, t.ledger, t.blacklist)
        for p in range(settings.kafka.partitions)
    ]
    ends = probe.end_offsets(parts)
    behind = sum(ends[tp] - (probe.committed(tp) or 0) for tp in parts)
    probe.close()
    return behind


def stored(settings: Settings) -> tuple[dict[str, int], int, int]:
    """Profiles' versions, ledger rows and blacklist periods in PostgreSQL."""
    read = PostgresReader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    try:
        return read.versions(), len(read.ledger()), len(read.blacklist_rows())
    finally:
        read.close()


def versions(h: SinkBatch) -> dict[str, int]:
    return {d["citizen_id"]: d["version"] for d in h.doubles}


def test_one_record_of_each_hostile_kind_never_stops_the_sink(settings):
    ensure_topics(settings)
    pg = refusing_sink(settings)
    first = good_harvest(40)
    bad = hostile(first, settings)
    good = sends(first, settings)
    produce(settings, [*good[:50], *bad, *good[50:]])  # hostile ones in the middle

    metrics = SinkMetrics()
    stats = drain(settings, pg, len(good) + len(bad), metrics)
    assert stats.dead_letters == len(bad)

    # Every good record is in PostgreSQL, as the processor sent it.
    assert stored(settings) == (versions(first), len(first.ledger), len(first.blacklist))
    assert first.blacklist

    # Every hostile one is on the sink's dead-letter topic, unchanged, with its reason.
    letters = read_dead_letters(settings, keep=100, topic=settings.topics.names.sink_dlq)
    want = Counter(reason for *_, reason in bad)
    assert letters.by_reason == want
    assert sorted(d["value"] for d in letters.latest) == sorted(v for _, _, v, _ in bad)
    refused = next(d for d in letters.latest if d["reason"] == "database-refused")
    assert "23514" in refused["detail"] and "refuse_me" in refused["detail"]
    for reason, n in want.items():
        got = metrics.registry.get_sample_value(
            "moisson_sink_dead_letters_total", {"reason": reason}
        )
        assert got == n, reason

    # The sink committed past them (lag 0), and goes on with what comes next.
    assert lag(settings) == 0
    later = good_harvest(10, first=1000)
    produce(settings, sends(later, settings))
    again = drain(settings, pg, len(sends(later, settings)), SinkMetrics())
    assert again.dead_letters == 0 and lag(settings) == 0
    assert stored(settings)[0] == {**versions(first), **versions(later)}
    pg.close()


class Unchecked(PostgresSink):
    """The sink without its checks: only PostgreSQL (and the writer) refuse."""

    writes = 0

    def refuse(self, kind: str, record: Record) -> Refusal | None:
        return None

    def write(self, batch):
        self.writes += 1
        return super().write(batch)


def test_what_the_checks_would_catch_the_database_refuses_and_the_bisection_sets_aside(settings):
    pg = Unchecked(settings.database.sqlalchemy_url(), settings.database.schema_name)
    h = good_harvest(40)
    d, e = {**h.doubles[1], "citizen_id": "c-hostile"}, h.ledger[1]
    bad = [
        ("doubles", {**d, "citizen_id": "".join(random.choices(string.ascii_letters, k=3000))}),
        ("doubles", {**d, "score": 2**40}),
        ("doubles", {**d, "version": 2**63}),
        ("doubles", {**d, "tier": "A\x00"}),
        ("doubles", {**d, "books": {"T\x00": 1}}),
        ("ledger", {**e, "rule_id": "made.up"}),
    ]
    good = [("doubles", r) for r in h.doubles] + [("ledger", r) for r in h.ledger]
    mixed = good[:30] + bad + good[30:]
    items = [Item(k, r, Msg(k, 0, i, None, b"")) for i, (k, r) in enumerate(mixed)]
    out = write_items(pg, items, SinkStats(), 1.0, lambda: False)
    assert out is not None
    got = {item.message.offset: refusal for item, refusal in out.refused}
    assert sorted(got) == list(range(30, 30 + len(bad)))
    details = [got[30 + i].detail for i in range(len(bad))]
    assert [got[30 + i].reason for i in range(len(bad))] == ["database-refused"] * 5 + [
        "write-error"
    ]
    assert details[0].startswith("SQLSTATE 54000: index row size")
    assert details[1].startswith("SQLSTATE 22003") and details[2].startswith("SQLSTATE 22003")
    assert "NUL" in details[3] and details[4].startswith("SQLSTATE 22P05")
    assert details[5] == "KeyError: 'made.up'"
    assert pg.writes <= 1 + 2 * len(bad) * 7  # log2(88 items) < 7
    assert stored(settings)[:2] == (versions(h), len(h.ledger))
    pg.close()


def test_a_killed_connection_is_retried_and_nothing_is_lost(settings):
    """The sink's backend is killed (pg_terminate_backend) while it waits on a lock:
    the write is retried, every record is written once, nothing is set aside."""
    ensure_topics(settings)
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    h = good_harvest(60)
    produce(settings, sends(h, settings))
    schema = pg._schema_sql()
    locker = pg.engine.connect()
    locker.execute(text(f"LOCK TABLE {schema}.citizen_profiles IN ACCESS EXCLUSIVE MODE"))
    metrics, result = SinkMetrics(), {}
    want = len(sends(h, settings))
    sink = threading.Thread(
        target=lambda: result.update(stats=drain(settings, pg, want, metrics)), daemon=True
    )
    sink.start()
    killed = []
    try:
        with pg.engine.connect() as killer:
            deadline = time.monotonic() + 30
            while not killed and time.monotonic() < deadline:
                killed = killer.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                        " AND query LIKE :mine"
                    ),
                    {"mine": f"%{schema}.citizen_profiles%"},
                ).all()
                killer.commit()  # pg_stat_activity is one snapshot per transaction
                time.sleep(0.1)
    finally:
        locker.rollback()
        locker.close()
    assert killed == [(True,)], "the sink's backend never waited on the lock"
    sink.join(60)
    stats = result["stats"]
    assert stats.dead_letters == 0 and stats.errors
    r = metrics.registry
    assert r.get_sample_value("moisson_sink_retries_total") >= 1
    failures = [
        s.value
        for metric in r.collect()
        if metric.name == "moisson_sink_database_errors"
        for s in metric.samples
        if s.name.endswith("_total")
    ]
    assert sum(failures) >= 1  # AdminShutdown, or "the connection is lost" on rollback
    assert stored(settings) == (versions(h), len(h.ledger), len(h.blacklist))
    assert read_dead_letters(settings, topic=settings.topics.names.sink_dlq).total == 0
    assert lag(settings) == 0
    pg.close()


def test_the_sink_command_sets_aside_and_moisson_dlq_sink_shows_it(settings, procs, tmp_path):
    """``moisson sink`` creates its dead-letter topic and sends refused records there;
    ``moisson dlq --sink`` counts them per reason."""
    settings = settings.replace(metrics={"sink_port": 0})
    h = good_harvest(5)
    ensure_topics(settings)
    records = sends(h, settings)
    bad = [r for r in hostile(h, settings) if r[3] in ("too-long", "unknown-rule")]
    produce(settings, [*records[:3], *bad, *records[3:]])
    proc = pipeline.start_sink(settings, tmp_path / "sink.log")
    procs.append(proc)

    def written() -> dict[str, int]:
        try:
            return stored(settings)[0]
        except ProgrammingError:  # the sink has not created its tables yet
            return {}

    pipeline.wait_for(written, lambda got: got == versions(h), timeout=60)
    letters = pipeline.wait_for(
        lambda: read_dead_letters(settings, topic=settings.topics.names.sink_dlq),
        lambda d: d.total >= 2,
        timeout=60,
    )
    assert letters.by_reason == {"too-long": 1, "unknown-rule": 1}
    assert proc.poll() is None, "the sink must keep running"
    res = subprocess.run(
        [sys.executable, "-m", "moisson", "dlq", "--sink"],
        capture_output=True,
        text=True,
        env=pipeline.child_env(settings),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert f"{settings.topics.names.sink_dlq}: 2 dead letter(s)" in res.stdout
    assert "too-long" in res.stdout and "unknown-rule" in res.stdout
    assert pipeline.stop(proc) == 0
