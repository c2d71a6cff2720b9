"""A fresh 30-day recording of 300 citizens, replayed at full speed into two workers
over four partitions, must pass the same checks as ``moisson verify``: PostgreSQL
equal to the oracle, and every citizen's last sanction equal to their blacklist state.
So must the same recording replayed one sensor at a time (``replay --sensor metro``,
then payment, book, camera), which skews the topics by the whole 30 days: the bounded
state may evict nothing a later topic still needs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from moisson.ops.recording import open_recording, write_simulation
from moisson.ops.verify import expected_doubles
from moisson.settings import SENSOR_KINDS, Settings
from processors.core.oracle import Oracle
from producers.city import generate_events
from producers.publisher import ensure_topics
from tests.drills.harness import Pipeline, send, sent, size

SIZE = size()
pytestmark = [pytest.mark.drills, pytest.mark.timeout(SIZE.timeout_s + 300)]


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("30 days, 300 citizens, 2 workers", [()]),
        ("30 days, one sensor at a time", [(k,) for k in SENSOR_KINDS]),
    ],
)
def test_a_30_day_recording_at_full_speed_with_two_workers(
    settings: Settings, tmp_path: Path, name: str, order: list[tuple[str, ...]]
):
    out = tmp_path / "recording"
    events = generate_events(11, 300, days=30, sanctions=Oracle())
    extra = {"seed": 11, "citizens": 300, "days": 30}
    write_simulation(out, events, 4, extra, {k: f"sensors.{k}" for k in SENSOR_KINDS})
    rec = open_recording(out)
    settings = settings.replace(kafka={"partitions": 4})
    drill = Pipeline(settings, tmp_path, rec, expected_doubles(rec))
    try:
        ensure_topics(settings)  # a worker started before its topics exist ignores them
        started = time.monotonic()
        drill.start_worker(0)
        drill.start_worker(1)
        drill.start_sink()
        for sensors in order:
            sent(*send(rec, settings, sensors=sensors), timeout=SIZE.timeout_s)
        drill.finish(name, [], [], started, SIZE.timeout_s)
    finally:
        drill.close()
