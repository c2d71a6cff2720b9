"""The Postgres sink against a real PostgreSQL: version guard and commit order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from processors.core.fold import explained_ledger, fold_all, new_double
from producers.publisher import ensure_topics
from schemas.codec import DOUBLE, encode
from sinks.base import Sink, SinkBatch
from sinks.postgres.reader import PostgresReader
from sinks.postgres.writer import PostgresSink
from sinks.runner import make_consumer, run_sink
from tests.factories import ev

pytestmark = pytest.mark.integration


def double(cid: str, version: int, score: int):
    d = new_double(cid)
    d.update(
        version=version,
        score=score,
        metro_count=version,
        first_seen=datetime(2026, 3, 2, tzinfo=UTC),
        last_seen=datetime(2026, 3, 3, tzinfo=UTC),
    )
    return d


def test_older_or_replayed_doubles_are_no_ops(settings):
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    read = PostgresReader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    pg.write([double("a", 5, 500), double("b", 1, 600)])
    pg.write([double("a", 3, 123)])  # older: ignored
    pg.write([double("a", 5, 999)])  # same version replayed: ignored
    pg.write([double("b", 2, 590), double("b", 4, 580), double("b", 3, 585)])  # one batch
    rows = read.profiles()
    assert (rows["a"]["version"], rows["a"]["score"]) == (5, 500)
    assert (rows["b"]["version"], rows["b"]["score"]) == (4, 580)
    pg.write([double("a", 6, 490)])
    assert read.profiles()["a"]["score"] == 490
    pg.close()
    read.close()


class FailingSink(Sink):
    def __init__(self) -> None:
        self.calls = 0

    def write(self, batch):
        self.calls += 1
        raise ConnectionError("database is down")


def test_offsets_are_committed_only_after_the_database_commits(settings):
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    for i in range(20):
        producer.send(
            settings.topics.doubles,
            key=f"c{i}".encode(),
            value=encode(DOUBLE, double(f"c{i}", 1, 600)),
        )
    producer.flush()
    producer.close()

    failing = FailingSink()
    consumer = make_consumer(
        settings.topics.doubles, settings.sink.group_id, **settings.kafka.client_kwargs()
    )
    stats = run_sink(consumer, failing, 100, should_stop=lambda: failing.calls >= 1)
    consumer.close()
    assert failing.calls == 1 and stats.batches == 0

    probe = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.sink.group_id,
        enable_auto_commit=False,
    )
    parts = [TopicPartition(settings.topics.doubles, p) for p in range(settings.kafka.partitions)]
    assert all(probe.committed(tp) is None for tp in parts), "nothing may be committed"
    probe.close()

    # A healthy sink in the same group then gets every double.
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    read = PostgresReader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    consumer = make_consumer(
        settings.topics.doubles, settings.sink.group_id, **settings.kafka.client_kwargs()
    )
    run_sink(consumer, pg, 100, should_stop=lambda: len(read.profiles()) >= 20)
    consumer.close()
    assert len(read.profiles()) == 20
    pg.close()
    read.close()


def test_the_ledger_view_walks_the_clamped_score_as_the_fold_does(settings):
    """Scores hit the floor and the ceiling, with ties in event time: the view's walk
    (an SQL aggregate) gives the same score before and after every entry as the fold's."""
    events = [
        *(ev("camera", hours=h, behaviour="GATHERING") for h in range(14)),  # 600 → 0
        *(ev("payment", hours=20, category="CHARITY") for _ in range(3)),  # a tie
        *(ev("camera", hours=30 + h, behaviour="VOLUNTEERING") for h in range(120)),  # → 1000
        ev("payment", hours=200, category="FINES"),
    ]
    d = fold_all(events)["c0000001"]
    want = [
        (e["event_id"], e["rule_id"], e["score_before"], e["score_after"])
        for e in explained_ledger(d)
    ]
    walked = {after for *_, after in want}
    assert {0, 1000} <= walked and d["score"] == 980
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    read = PostgresReader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    pg.write(SinkBatch.of([d]))
    got = [
        (r["event_id"], r["rule_id"], r["score_before"], r["score_after"])
        for r in read.ledger("c0000001")
    ]
    assert got == want
    assert read.profiles()["c0000001"]["score"] == got[-1][3]
    pg.close()
    read.close()
