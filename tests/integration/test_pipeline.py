"""The whole path on a real broker and a real PostgreSQL: sensors → faust → sink."""

from __future__ import annotations

from pathlib import Path

from kafka import KafkaProducer

from moisson import pipeline
from processors.fold import Event, fold_all
from producers.city import generate_events
from producers.publisher import Publisher, ensure_topics
from schemas.codec import DOUBLE, encode
from sinks.postgres import PostgresSink

SEED, CITIZENS, COUNT = 2026, 250, 3000
COMPARED = (
    "version",
    "score",
    "metro_count",
    "payment_count",
    "book_count",
    "camera_count",
    "first_seen",
    "last_seen",
    "rule_hits",
)


def garbage(bootstrap: str, settings, good_event) -> int:
    """Send every kind of bad message the skeleton must survive; return how many."""
    bad = [
        (settings.topics.sensor("metro"), b"c0000001", b"not avro at all"),
        (settings.topics.sensor("metro"), b"c0000002", b"\xc3\x01" + b"\x00" * 8 + b"junk"),
        (
            settings.topics.sensor(good_event.kind),
            good_event.citizen_id.encode(),
            good_event.encode()[:-5],
        ),
        (settings.topics.sensor("payment"), b"c0000003", b""),
        (
            settings.topics.sensor("camera"),
            b"c0000004",
            encode(DOUBLE, {"citizen_id": "c0000004", "version": 1, "score": 1}),
        ),
        (settings.topics.sensor(good_event.kind), b"someone-else", good_event.encode()),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for topic, key, value in bad:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    return len(bad)


def test_every_profile_equals_the_pure_fold(settings, procs, tmp_path: Path):
    events = list(generate_events(SEED, CITIZENS, COUNT))
    expected = fold_all(Event(e.kind, e.record) for e in events)
    assert len(expected) >= 200

    ensure_topics(settings)
    publisher = Publisher(settings)
    half = COUNT // 2
    publisher.publish(events[:half])
    garbage(settings.kafka.bootstrap_servers, settings, events[0])
    publisher.publish(events[half:])
    publisher.close()

    worker = pipeline.start_worker(settings, tmp_path / "worker.log")
    sink = pipeline.start_sink(settings, tmp_path / "sink.log")
    procs.extend([sink, worker])
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)

    def alive() -> str | None:
        for name, proc in (("worker", worker), ("sink", sink)):
            if proc.poll() is not None:
                log = (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
                return f"{name} exited with {proc.returncode}:\n{log}"
        return None

    applied = pipeline.wait_for(
        lambda: sum(p["version"] for p in pg.profiles().values()),
        lambda n: n >= COUNT,
        timeout=240,
        alive=alive,
    )
    assert applied == COUNT, "more events applied than were sent: something was applied twice"

    rows = pg.profiles()
    assert set(rows) == set(expected)
    for cid, double in expected.items():
        row = rows[cid]
        assert {f: row[f] for f in COMPARED} == {f: double[f] for f in COMPARED}, cid

    assert worker.poll() is None, "the worker must keep running after garbage"
    assert sink.poll() is None
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "undecodable" in log and "key-mismatch" in log and "not-a-sensor-event" in log
    pg.close()
