"""Crash drills: damage the real pipeline mid-stream, let it recover, and prove that
PostgreSQL equals the pure-fold oracle with nothing lost and nothing applied twice.

`make test` runs them at CI size (20k events); `make drills` at full size
(``DRILLS_SIZE=full``: 100k events, ten kills of the processor).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from moisson.ops import pipeline
from moisson.settings import Settings
from moisson.stack import EmbeddedPostgres
from moisson.stack.kafka import ApacheKafka
from tests.drills.harness import Pipeline, kill_points, send, sent, size

SIZE = size()
pytestmark = [pytest.mark.drills, pytest.mark.timeout(SIZE.timeout_s + 300)]


def test_processor_killed_at_random_points(drill: Pipeline):
    """kill -9 the faust worker at seeded points; each restart recovers its table
    from the changelog and the dedupe absorbs what is processed again."""
    sent(*send(drill.recording, drill.settings), timeout=300)
    drill.start_sink()
    drill.start_worker()
    points = kill_points("processor", SIZE.processor_kills)
    resumes: list[float] = []
    last = time.monotonic()
    for f in points:
        drill.wait_progress(drill.applied, f * drill.events, SIZE.timeout_s)
        at = drill.applied()
        pipeline.kill(drill.workers[0])
        last = time.monotonic()
        drill.start_worker()
        resumes.append(drill.wait_moving(drill.applied, at, last, SIZE.timeout_s))
    drill.finish("processor kill -9", points, resumes, last, SIZE.timeout_s)


def test_two_workers_one_killed(drill: Pipeline):
    """Two workers share the partitions; one dies for good and the survivor takes over."""
    sent(*send(drill.recording, drill.settings), timeout=300)
    drill.start_sink()
    drill.start_worker(0)
    drill.start_worker(1)
    survivor_log = drill.logs / "worker-0-1.log"
    (point,) = kill_points("two-workers", 1, 0.2, 0.6)
    drill.wait_progress(drill.applied, point * drill.events, SIZE.timeout_s)
    readies = survivor_log.read_text(errors="replace").count("Worker ready")
    pipeline.kill(drill.workers.pop(1))
    killed = time.monotonic()
    # Recovered once the survivor has rebalanced and restored the victim's partitions.
    pipeline.wait_for(
        lambda: survivor_log.read_text(errors="replace").count("Worker ready"),
        lambda n: n > readies,
        SIZE.timeout_s,
        alive=drill.alive,
    )
    resume = time.monotonic() - killed
    drill.finish("2 workers, 1 killed", [point], [resume], killed, SIZE.timeout_s)
    assert drill.workers[0].poll() is None, "the survivor kept running"


def test_sink_killed_mid_batch(drill: Pipeline):
    """kill -9 the sink while it writes; the restarted sink redoes uncommitted batches."""
    sent(*send(drill.recording, drill.settings), timeout=300)
    drill.start_worker()
    drill.start_sink()
    points = kill_points("sink", SIZE.sink_kills)
    resumes: list[float] = []
    last = time.monotonic()
    for f in points:
        drill.wait_progress(drill.stored, f * drill.events, SIZE.timeout_s)
        assert drill.sink is not None
        pipeline.kill(drill.sink)
        last = time.monotonic()
        at = drill.stored()
        drill.start_sink()
        resumes.append(drill.wait_moving(drill.stored, at, last, SIZE.timeout_s))
    drill.finish("sink kill -9", points, resumes, last, SIZE.timeout_s)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[ApacheKafka]:
    """An Apache Kafka for this drill alone: stopping it disturbs no other test."""
    s = Settings()
    broker = ApacheKafka(tmp_path / "kafka", s.stack.kafka_version, s.stack.cache_dir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_broker_restart(drill: Pipeline, own_broker: ApacheKafka):
    """Stop Kafka mid-stream, start it again on the same data; everyone reconnects."""
    drill.settings = drill.settings.replace(kafka={"bootstrap_servers": own_broker.bootstrap})
    thread, outcome = send(drill.recording, drill.settings, SIZE.paced_s)
    drill.start_worker()
    drill.start_sink()
    (point,) = kill_points("broker", 1, 0.3, 0.6)
    drill.wait_progress(drill.applied, point * drill.events, SIZE.timeout_s)
    at = drill.stored()
    stopped = time.monotonic()
    own_broker.stop()
    time.sleep(5)
    own_broker.resume()
    down = time.monotonic() - stopped
    resume = drill.wait_moving(drill.stored, at, stopped, SIZE.timeout_s)
    summary = sent(thread, outcome, SIZE.timeout_s)
    assert summary.sent == drill.recording.manifest["count"]
    drill.finish(
        "Kafka broker restart",
        [point],
        [resume],
        stopped,
        SIZE.timeout_s,
        notes=f"broker down {down:.1f}s (stop, 5 s, start again in "
        f"{own_broker.start_seconds:.1f}s)",
    )


@pytest.fixture
def own_database() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL for this drill alone: stopping it disturbs no other test.

    Its data lives outside pytest's temporary root, whose mode every pytest session
    resets to 0700, which would lock out the server's own system user on restart.
    """
    workdir = Path(tempfile.mkdtemp(prefix="moisson-drill-pg-"))
    pg = EmbeddedPostgres(workdir)
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


RETRY = re.compile(r"sink write failed \(attempt (\d+), (\w+): .*\); retrying in ([\d.]+)s")


def test_database_outage(drill: Pipeline, own_database: EmbeddedPostgres):
    """Stop PostgreSQL for 30 s mid-stream: the sink backs off (capped), says so,
    reconnects when the database is back, and loses nothing."""
    drill.settings = drill.settings.replace(
        database={"url": SecretStr(own_database.url)}, sink={"retry_max_s": 4.0}
    )
    thread, outcome = send(drill.recording, drill.settings, SIZE.paced_s)
    drill.start_worker()
    drill.start_sink()
    (point,) = kill_points("database", 1, 0.2, 0.4)
    drill.wait_progress(drill.stored, point * drill.events, SIZE.timeout_s)
    drill.pg.reset()
    stopped = time.monotonic()
    own_database.stop()
    time.sleep(SIZE.outage_s)
    own_database.start()
    # Resumed once the sink says its write went through (it retries on its own clock).
    resume = pipeline.wait_for_log(
        drill.logs / "sink-1.log", "sink write succeeded after", SIZE.timeout_s, drill.sink
    )
    sent(thread, outcome, SIZE.timeout_s)
    drill.finish(
        "PostgreSQL outage",
        [point],
        [resume],
        stopped,
        SIZE.timeout_s,
        notes=f"database down {SIZE.outage_s:.0f}s",
    )
    log = "".join(p.read_text(errors="replace") for p in drill.logs.glob("sink-*.log"))
    retries = RETRY.findall(log)
    assert len(retries) >= 3, log[-3000:]
    delays = [float(d) for _, _, d in retries]
    assert max(delays) == drill.settings.sink.retry_max_s, "the backoff grows to its cap"
    assert "OperationalError" in {kind for _, kind, _ in retries}
    assert "sink write succeeded after" in log
    assert drill.sink is not None and drill.sink.poll() is None, "the sink survived the outage"
