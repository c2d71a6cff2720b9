"""The whole path on a real broker and a real PostgreSQL: sensors → faust → sink."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from moisson.ops import pipeline
from moisson.ops.dlq import read_dead_letters
from moisson.resolvers import registry_client
from moisson.settings import settings_env
from processors.core.fold import Event, explained_ledger, fold_all
from processors.core.oracle import Oracle
from processors.core.validation import apply_message
from producers.city import generate_events
from producers.publisher import KafkaSanctions, Pacer, Publisher, ensure_topics
from schemas.codec import SANCTION, decode
from sinks.postgres.reader import PostgresReader
from sinks.postgres.tables import PROFILE_FIELDS
from tests.factories import pg_reader
from tests.poison import corpus

pytestmark = pytest.mark.integration


def bad_messages(settings, good_event) -> list[tuple[str, bytes | None, bytes, str]]:
    """The poison corpus plus a re-delivered good event: (topic, key, value, reason)."""
    out = []
    for p in corpus():
        reason = p.reason
        if reason is None:  # fuzzed bytes: whatever the per-message logic finds first
            reason = apply_message(
                None, expected_kind=p.kind, topic="t", key=p.key, value=p.value
            ).rejected
        assert reason is not None
        out.append((settings.topics.sensor(p.kind), p.key, p.value, reason.value))
    return out


def garbage(settings, good_event) -> list[tuple[str, bytes | None, bytes, str]]:
    """Send the bad messages and the same good event again (applied once only)."""
    bad = bad_messages(settings, good_event)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    for topic, key, value, _ in bad:
        producer.send(topic, key=key, value=value)
    producer.send(
        settings.topics.sensor(good_event.kind),
        key=good_event.citizen_id.encode(),
        value=good_event.encode(),
    )
    producer.flush()
    producer.close()
    return bad


def start(settings, procs, tmp_path: Path):
    worker, _ = pipeline.start_worker_ready(settings, tmp_path / "worker.log", timeout=180)
    sink = pipeline.start_sink(settings, tmp_path / "sink.log")
    procs.extend([sink, worker])

    def alive() -> str | None:
        for name, proc in (("worker", worker), ("sink", sink)):
            if proc.poll() is not None:
                log = (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
                return f"{name} exited with {proc.returncode}:\n{log}"
        return None

    return worker, sink, alive


def wait_applied(pg: PostgresReader, count: int, alive) -> int:
    return pipeline.wait_for(
        lambda: sum(p["version"] for p in pg.profiles().values()),
        lambda n: n >= count,
        timeout=300,
        alive=alive,
    )


def assert_postgres_equals_oracle(pg: PostgresReader, expected: dict) -> None:
    """Profiles, ledger and blacklist in PostgreSQL equal the pure fold, exactly."""
    rows = pg.profiles()
    assert set(rows) == set(expected)
    for cid, double in expected.items():
        assert {f: rows[cid][f] for f in PROFILE_FIELDS} == {f: double[f] for f in PROFILE_FIELDS}

    want_ledger = sorted(
        (
            cid,
            e["occurred_at"],
            e["event_id"],
            e["rule_id"],
            e["delta"],
            e["score_before"],
            e["score_after"],
            e["explanation"],
        )
        for cid, d in expected.items()
        for e in explained_ledger(d)
    )
    got_ledger = sorted(
        (
            r["citizen_id"],
            r["occurred_at"],
            r["event_id"],
            r["rule_id"],
            r["delta"],
            r["score_before"],
            r["score_after"],
            r["explanation"],
        )
        for r in pg.ledger()
    )
    assert got_ledger == want_ledger

    want_blacklist = sorted(
        (cid, p["entered_at"], p["lifted_at"], p["score_at_entry"], p["event_id"])
        for cid, d in expected.items()
        for p in d["blacklist"]
    )
    got_blacklist = sorted(
        (r["citizen_id"], r["entered_at"], r["lifted_at"], r["score_at_entry"], r["event_id"])
        for r in pg.blacklist_rows()
    )
    assert got_blacklist == want_blacklist


def test_every_profile_equals_the_pure_fold_despite_garbage(settings, procs, tmp_path: Path):
    events = list(generate_events(2026, 250, 3000, sanctions=Oracle()))
    expected = fold_all(Event(e.kind, e.record) for e in events)
    assert len(expected) >= 200

    ensure_topics(settings)
    publisher = Publisher(settings, registry=registry_client(settings))
    publisher.publish(events[:1500])
    bad = garbage(settings, events[0])
    publisher.publish(events[1500:])
    publisher.close()

    worker, sink, alive = start(settings, procs, tmp_path)
    pg = pg_reader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    assert wait_applied(pg, len(events), alive) == len(events), "an event was applied twice"
    assert_postgres_equals_oracle(pg, expected)

    assert worker.poll() is None, "the worker must keep running after garbage"
    assert sink.poll() is None
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "not-single-object" in log and "key-mismatch" in log and "negative-amount" in log
    pg.close()

    # Nothing was lost: every refused message sits in the dead-letter topic, unchanged,
    # with the reason the poison corpus gives it.
    letters = pipeline.wait_for(
        lambda: read_dead_letters(settings, keep=1000),
        lambda d: d.total >= len(bad),
        timeout=60,
    )
    assert letters.by_reason == Counter(reason for *_, reason in bad)
    assert sorted(d["value"] for d in letters.latest) == sorted(v for _, _, v, _ in bad)
    res = subprocess.run(
        [sys.executable, "-m", "moisson", "dlq"],
        capture_output=True,
        text=True,
        env={**os.environ, **settings_env(settings)},
        timeout=120,
    )
    assert res.returncode == 0 and f"{len(bad)} dead letter(s)" in res.stdout
    assert "key-mismatch" in res.stdout


def latest_per_citizen(settings, topic: str, schema) -> dict[str, dict]:
    """The last record per citizen on a keyed topic, read from the beginning."""
    consumer = KafkaConsumer(
        **settings.kafka.client_kwargs(), enable_auto_commit=False, consumer_timeout_ms=3000
    )
    consumer.assign([TopicPartition(topic, p) for p in range(settings.kafka.partitions)])
    consumer.seek_to_beginning()
    latest = {}
    for rec in consumer:
        record = decode(rec.value, schema)[1]
        latest[record["citizen_id"]] = record
    consumer.close()
    return latest


def last_sanctions(settings) -> dict[str, dict]:
    return latest_per_citizen(settings, settings.topics.sanctions, SANCTION)


def test_a_week_of_a_city_with_sanctions_closing_the_loop(settings, procs, tmp_path: Path):
    """Lulu's week among 120 citizens, 8 partitions; the sensors obey the sanctions topic."""
    settings = settings.replace(kafka={"partitions": 8})
    ensure_topics(settings)
    _, _, alive = start(settings, procs, tmp_path)

    listener = KafkaSanctions(settings).start()

    published: list = []
    publisher = Publisher(settings, registry=registry_client(settings))
    # Lulu's week in about 40 s, so sanctions come back while the city lives: on the
    # calibrated scale her story (and a few activists) is what reaches the line.
    publisher.publish(
        generate_events(7, 120, days=7, sanctions=listener, scenario="lulu"),
        pacer=Pacer(speed=7 * 86_400 / 40, rate=0),
        keep=published,
    )
    publisher.close()
    listener.stop()

    expected = fold_all(Event(e.kind, e.record) for e in published)
    pg = pg_reader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    assert wait_applied(pg, len(published), alive) == len(published)
    assert_postgres_equals_oracle(pg, expected)

    blacklisted = {cid for cid, d in expected.items() if d["blacklist"]}
    assert blacklisted, "someone must fall under 350 within the week"
    assert listener.received > 0, "the sensors heard sanctions from Kafka"
    denied = [e for e in published if e.kind == "metro" and e.record["outcome"] == "DENIED"]
    assert denied, "a blacklisted citizen was refused at a metro gate"
    for e in denied:
        periods = expected[e.citizen_id]["blacklist"]
        assert any(p["entered_at"] <= e.record["occurred_at"] for p in periods)

    sanctions = last_sanctions(settings)
    for cid, d in expected.items():
        latest = sanctions.get(cid)
        assert (latest is not None and latest["active"]) == d["blacklisted"], cid
    pg.close()
