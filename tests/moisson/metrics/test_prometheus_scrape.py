"""A real Prometheus (Debian's 2.42, installed by `make test`) scrapes a real worker,
sink and sensors during a replay; its query API must agree with the oracle, and every
panel of the Grafana dashboard must return data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from moisson.ops import pipeline
from moisson.ops.recording import open_recording, write_simulation
from moisson.ops.verify import caught_up, expected_doubles
from moisson.settings import SENSOR_KINDS, Settings
from moisson.stack.base import free_port
from processors.core.oracle import Oracle
from producers.city import SensorEvent, generate_events
from tests.drills.harness import send, sent
from tests.factories import pg_reader
from tests.poison import corpus

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "moisson.json"
URL = re.compile(r"(processor|sink|sensors) metrics: (http://\S+/metrics)")


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    assert found, "no prometheus on PATH: `make test` installs Debian's (make prometheus)"
    return found


def metrics_url(log: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The endpoint a service logged (its port was 0: any free one)."""
    pipeline.wait_for_log(log, " metrics: http://", timeout, proc)
    found = URL.search(log.read_text(errors="replace"))
    assert found, log.read_text(errors="replace")[-2000:]
    return found.group(2)


class Prometheus:
    """A Prometheus server on loopback, scraping ``targets`` every second."""

    def __init__(self, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        jobs = []
        for job, url in targets.items():
            parts = urllib.parse.urlsplit(url)
            jobs.append(
                {
                    "job_name": job,
                    "metrics_path": parts.path,
                    "static_configs": [{"targets": [parts.netloc]}],
                }
            )
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}}
        config["scrape_configs"] = jobs  # type: ignore[assignment]
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = workdir / "prometheus.log"
        self.proc = pipeline.spawn(
            [
                prometheus_binary(),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            Settings(),
            self.log,
        )
        pipeline.wait_for(self.ready, bool, 60, alive=self.dead)

    def dead(self) -> str | None:
        if self.proc.poll() is None:
            return None
        return f"prometheus exited:\n{self.log.read_text(errors='replace')[-2000:]}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` gives now (an error is raised, not returned)."""
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/api/v1/query?{q}", timeout=10
        ) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}

    def targets_up(self) -> dict[str, str]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/api/v1/targets", timeout=10
        ) as resp:
            active = json.load(resp)["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] + t["lastError"] for t in active}

    def stop(self) -> None:
        pipeline.stop(self.proc)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in reversed(started):
        pipeline.stop(p)


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel of the Grafana dashboard."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def test_prometheus_agrees_with_the_oracle(
    settings: Settings, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
):
    """Applied events, dead letters per reason and lag, as a real Prometheus scraped
    them from a real worker and sink during a replay; then every Grafana panel."""
    # On the calibrated scale a crowd rarely reaches the line in a day; Lulu's cast
    # (Mei, and the activists among 60) does, so the blacklist gauge has a value to match.
    events = list(generate_events(2026, 60, count=6000, sanctions=Oracle(), scenario="lulu"))
    write_simulation(
        tmp_path / "rec",
        events,
        4,
        {"seed": 2026, "citizens": 60, "scenario": "lulu"},
        {k: f"sensors.{k}" for k in SENSOR_KINDS},
    )
    rec = open_recording(tmp_path / "rec")
    expected = expected_doubles(rec)
    applied = sum(d["version"] for d in expected.values())
    blacklisted = sum(1 for d in expected.values() if d["blacklisted"])
    assert applied == len(events) and blacklisted > 0  # the seed makes the check bite

    settings = settings.replace(kafka={"partitions": 4})
    thread, outcome = send(rec, settings)  # creates the topics, replays at once
    worker, _ = pipeline.start_worker_ready(settings, tmp_path / "worker.log", timeout=180)
    procs.append(worker)
    sink = pipeline.start_sink(settings, tmp_path / "sink.log")
    procs.append(sink)
    # the sensors write beside the replay
    side = settings.replace(topics={"prefix": f"{settings.topics.prefix}sensors."})
    sensors = pipeline.spawn(
        [
            *(sys.executable, "-m", "moisson", "sensors", "--citizens", "50", "--days", "3"),
            *("--rate", "100", "--sanctions", "none"),
        ],
        side,
        tmp_path / "sensors.log",
    )
    procs.append(sensors)
    targets = {
        "processor": metrics_url(tmp_path / "worker.log", worker),
        "sink": metrics_url(tmp_path / "sink.log", sink),
        "sensors": metrics_url(tmp_path / "sensors.log", sensors),
    }
    prom = Prometheus(tmp_path / "prometheus", targets)
    try:
        sent(thread, outcome, timeout=120)
        reasons = poison(settings, events[-1])  # the newest: a duplicate, never too late
        pg = pg_reader(settings.database.sqlalchemy_url(), settings.database.schema_name)
        pipeline.wait_for(
            lambda: caught_up(expected, pg), lambda r: r[0] >= r[1], 240, interval=0.5
        )
        pg.close()

        # Every job scraped three times since (a rate needs two samples in its range).
        pipeline.wait_for(
            lambda: prom.by("count_over_time(up[1m])", "job"),
            lambda n: len(n) == len(targets) and min(n.values()) >= 3,
            30,
        )

        # What Prometheus holds catches up within a few scrapes of the pipeline.
        def figures() -> tuple[float | None, dict[str, float], float | None]:
            return (
                prom.value("sum(moisson_events_applied_total)"),
                prom.by("sum by (reason) (moisson_dead_letters_total)", "reason"),
                prom.value("sum(moisson_processor_lag_events)"),
            )

        got = pipeline.wait_for(
            figures,
            lambda f: f[0] == applied and f[1] == reasons and f[2] == 0,
            60,
            interval=1.0,
        )
        assert got == (applied, reasons, 0)
        assert prom.value('sum(moisson_events_rejected_total{reason="duplicate"})') == 1
        consumed = prom.value("sum(moisson_events_consumed_total)")
        assert consumed is not None and consumed >= len(events) + sum(reasons.values()) + 1
        assert prom.value('sum(moisson_sanctions_emitted_total{sanction="blacklisted"})')
        assert prom.value("max(moisson_blacklisted_citizens)") == blacklisted, prom.targets_up()
        assert prom.value("sum(moisson_sink_records_written_total)")
        assert prom.value("sum(moisson_sensor_events_sent_total)")
        assert set(prom.targets_up().values()) == {"up"}, prom.targets_up()

        queries = panel_queries()
        assert len(queries) >= 8
        empty = [(title, expr) for title, expr in queries if not prom.query(expr)]
        assert not empty, (
            f"Grafana panels with no data from a real Prometheus: {empty}; samples in the "
            f"last minute per job: {prom.by('count_over_time(up[1m])', 'job')}, scrape "
            f"seconds: {prom.by('scrape_duration_seconds', 'job')}, applied samples: "
            f"{prom.query('count_over_time(moisson_events_applied_total[1m])')}"
        )
    finally:
        prom.stop()


def poison(settings: Settings, again: SensorEvent) -> dict[str, float]:
    """Send every poison message of the corpus and one duplicate of a recorded event;
    the dead letters per reason they must give."""
    bad = corpus(fuzz=0)
    producer = KafkaProducer(**settings.kafka.client_kwargs())
    for p in bad:
        producer.send(settings.topics.sensor(p.kind), key=p.key, value=p.value)
    producer.send(
        settings.topics.sensor(again.kind), key=again.citizen_id.encode(), value=again.encode()
    )
    producer.flush()
    producer.close()
    counts: Counter[str] = Counter()
    for p in bad:
        assert p.reason is not None
        counts[p.reason.value] += 1
    return {reason: float(n) for reason, n in counts.items()}
