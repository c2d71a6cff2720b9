"""Hostile but valid strings travel sensors → faust → PostgreSQL byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer

from processors.core.fold import Event, fold_all
from processors.core.validation import Rejection
from producers.population import Citizen
from producers.publisher import ensure_topics
from schemas.codec import SENSOR_SCHEMAS, encode
from sinks.postgres.writer import PostgresSink
from tests.factories import pg_reader
from tests.moisson.ops.test_pipeline import assert_postgres_equals_oracle, start, wait_applied
from tests.poison import samples

pytestmark = pytest.mark.integration

HOSTILE = [
    "三体：黑暗森林",  # CJK
    "שלום עליכם",  # right to left
    "مرحبا \u202ebidi override\u202c",  # RTL override
    "📚🧧👁️‍🗨️ 家庭",  # emoji with zero-width joiners
    "tab\there, bell\x07, escape \x1b[31mred\x1b[0m, delete\x7f",  # control characters
    "e\u0301 vs \u00e9",  # combining vs precomposed: kept apart, not normalised
    "<script>alert('x')</script> & \"quotes\"",
    "长" * 85,  # long: 255 bytes, at the cap of a string a double keeps as a key
]


def test_hostile_strings_are_stored_faithfully(settings, procs, tmp_path: Path):
    s = samples()
    book, cam, pay = s["book"], s["camera"], s["payment"]
    events, sent = [], []
    for i, text in enumerate(HOSTILE):
        for e, field in ((book, "title"), (cam, "location"), (pay, "merchant")):
            record = {
                **e.record,
                field: text,
                "event_id": f"00000000-0000-4000-8000-{i:04d}{len(events):08d}",
            }
            events.append(Event(e.kind, record))
            sent.append((e.kind, e.citizen_id, encode(SENSOR_SCHEMAS[e.kind], record)))
    nul = {**book.record, "title": "before\x00after"}
    too_long = {
        **book.record,
        "title": "x" * 20000,
        "event_id": "00000000-0000-4000-8000-ffffffffffff",
    }
    expected = fold_all(events)

    ensure_topics(settings)
    producer = KafkaProducer(**settings.kafka.client_kwargs())
    for kind, cid, value in sent:
        producer.send(settings.topics.sensor(kind), key=cid.encode(), value=value)
    producer.send(
        settings.topics.sensor("book"),
        key=book.citizen_id.encode(),
        value=encode(SENSOR_SCHEMAS["book"], nul),
    )
    producer.send(
        settings.topics.sensor("book"),
        key=book.citizen_id.encode(),
        value=encode(SENSOR_SCHEMAS["book"], too_long),
    )
    producer.flush()
    producer.close()

    _, _, alive = start(settings, procs, tmp_path)
    pg = pg_reader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    assert wait_applied(pg, len(events), alive) == len(events)
    assert_postgres_equals_oracle(pg, expected)
    stored = pg.profiles()[book.citizen_id]["books"]
    assert set(HOSTILE) <= set(stored), "every title is stored exactly as sent"

    # The name registry keeps them too.
    people = [
        Citizen(f"c99{i:05d}", i, t, "东城", "西城", "activist", ()) for i, t in enumerate(HOSTILE)
    ]
    sink = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    sink.register(people)
    sink.close()
    assert pg.names([p.id for p in people]) == {p.id: p.name for p in people}
    pg.close()

    # The one string PostgreSQL cannot hold (U+0000), and a 20,000-character title a
    # double would keep as a key, went to the dead-letter topic instead.
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert Rejection.NUL_CHARACTER.value in log
    assert f"{Rejection.KEY_TOO_LONG.value} (title: 20000 bytes, limit 256)" in log
