"""An event later than the allowed lateness, on a real broker and a real PostgreSQL:
dead-lettered as too-late with its original bytes, and no double changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer

from moisson.ops import pipeline
from moisson.ops.dlq import read_dead_letters
from processors.core.fold import fold_all
from producers.publisher import ensure_topics
from schemas.codec import DOUBLE, SENSOR_SCHEMAS, encode
from sinks.postgres.tables import PROFILE_FIELDS
from tests.factories import ev, pg_reader
from tests.moisson.ops.test_pipeline import latest_per_citizen, start, wait_applied

pytestmark = pytest.mark.integration

DAY = 24.0


def test_an_event_older_than_the_lateness_is_dead_lettered_and_changes_no_double(
    settings, procs, tmp_path: Path
):
    on_time = [
        ev("camera", hours=30 * DAY, behaviour="GATHERING"),
        ev("book", hours=30 * DAY + 1, category="BANNED"),
        # Six days behind the camera's watermark: within the lateness (seven days).
        ev("camera", hours=24 * DAY, behaviour="JAYWALKING"),
    ]
    too_late = ev("camera", hours=20 * DAY, behaviour="GATHERING")  # ten days behind
    after = ev("camera", hours=30 * DAY + 2, behaviour="VOLUNTEERING")
    late_bytes = encode(SENSOR_SCHEMAS["camera"], too_late.record)

    ensure_topics(settings)
    producer = KafkaProducer(**settings.kafka.client_kwargs())
    for e in (*on_time, too_late, after):
        value = late_bytes if e is too_late else encode(SENSOR_SCHEMAS[e.kind], e.record)
        producer.send(settings.topics.sensor(e.kind), key=e.citizen_id.encode(), value=value)
    producer.flush()
    producer.close()

    applied = [*on_time, after]
    expected = fold_all(applied)["c0000001"]
    _, _, alive = start(settings, procs, tmp_path)
    pg = pg_reader(settings.database.sqlalchemy_url(), settings.database.schema_name)
    assert wait_applied(pg, len(applied), alive) == len(applied)
    stored = pg.profiles()["c0000001"]
    assert {f: stored[f] for f in PROFILE_FIELDS} == {f: expected[f] for f in PROFILE_FIELDS}
    assert stored["camera_count"] == 3, "the late gathering was not counted"
    assert not any(r["event_id"] == too_late.event_id for r in pg.ledger())
    pg.close()

    letters = pipeline.wait_for(
        lambda: read_dead_letters(settings, keep=10), lambda d: d.total >= 1, timeout=60
    )
    assert dict(letters.by_reason) == {"too-late": 1}
    assert letters.latest[0]["value"] == late_bytes
    assert "is before" in letters.latest[0]["detail"]
    # The doubles topic (the table's changelog) never held the late event either.
    double = latest_per_citizen(settings, settings.topics.doubles, DOUBLE)["c0000001"]
    assert double["version"] == len(applied)
    assert {f: double[f] for f in PROFILE_FIELDS} == {f: expected[f] for f in PROFILE_FIELDS}
