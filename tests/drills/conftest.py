"""Fixtures of the crash drills: one seeded recording and its oracle per session,
a pipeline per drill, and the results table at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moisson.ops.recording import Recording, open_recording, write_simulation
from moisson.ops.verify import expected_doubles
from moisson.settings import SENSOR_KINDS, Settings
from processors.core.oracle import Oracle
from producers.city import generate_events
from tests.drills.harness import RESULTS, SEED, Pipeline, Size, results_table, size, write_results

RESULTS_FILE = Path(__file__).resolve().parents[2] / "bench" / "results" / "drills.json"


@pytest.fixture(scope="session")
def drill_size() -> Size:
    return size()


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory, drill_size: Size) -> Recording:
    """A seeded city, written as the recording Kafka would hold (4 partitions)."""
    out = tmp_path_factory.mktemp("drills") / "recording"
    events = generate_events(SEED, drill_size.citizens, count=drill_size.events, sanctions=Oracle())
    write_simulation(
        out,
        events,
        4,
        {"seed": SEED, "citizens": drill_size.citizens},
        {k: f"sensors.{k}" for k in SENSOR_KINDS},
    )
    return open_recording(out)


@pytest.fixture(scope="session")
def oracle(recording: Recording) -> dict[str, Any]:
    return expected_doubles(recording)


@pytest.fixture
def drill(settings: Settings, tmp_path: Path, recording: Recording, oracle) -> Iterator[Pipeline]:
    settings = settings.replace(kafka={"partitions": 4})
    p = Pipeline(settings, tmp_path, recording, oracle)
    try:
        yield p
    finally:
        p.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    write_results(RESULTS_FILE, RESULTS, size())
    terminalreporter.section(f"crash drills ({size().name} size) → {RESULTS_FILE}")
    for line in results_table(RESULTS):
        terminalreporter.write_line(line)
