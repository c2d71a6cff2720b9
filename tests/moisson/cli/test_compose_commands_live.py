"""`moisson topics` and `moisson health` (what compose runs) against real Kafka and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kafka import KafkaAdminClient
from sqlalchemy.engine import make_url

from moisson.ops import pipeline
from moisson.settings import Settings, settings_env
from moisson.stack.base import free_port
from moisson.stack.health import wanted_topics

pytestmark = pytest.mark.integration

COMPOSE = yaml.safe_load((Path(__file__).parents[3] / "docker-compose.yml").read_text())


def probe(service: str, port_in_compose: int, port: int) -> list[str]:
    """A service's compose health check (after `CMD moisson`), on a free port."""
    test = COMPOSE["services"][service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "moisson"]
    return [a.replace(f":{port_in_compose}/", f":{port}/") for a in test[2:]]


def run(settings: Settings, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings), **extra, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "moisson", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_topics_then_health(settings: Settings):
    settings = settings.replace(kafka={"partitions": 3})
    before = run(settings, "health", "kafka")
    assert before.returncode == 1 and "missing topics" in before.stderr

    first = run(settings, "topics")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("created") == len(wanted_topics(settings)) == 7
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        described = admin.describe_topics(wanted_topics(settings))
    finally:
        admin.close()
    assert {len(t["partitions"]) for t in described} == {3}

    again = run(settings, "topics")
    assert again.returncode == 0 and again.stderr.count("exists") == 7

    ok = run(settings, "health", "kafka", "database")
    assert ok.returncode == 0, ok.stderr
    assert "✓ kafka" in ok.stderr and "✓ database: PostgreSQL 18" in ok.stderr


def test_topics_fails_when_kafka_cannot_hold_the_replicas(settings: Settings):
    settings = settings.replace(kafka={"replication_factor": 3})  # one broker in the tests
    res = run(settings, "topics")
    assert res.returncode == 1
    assert "Kafka did not create" in res.stderr
    assert "KAFKA_REPLICATION_FACTOR" in res.stderr


def test_the_processor_and_dashboard_health_checks_pass_on_live_services(
    settings: Settings, procs: list, tmp_path: Path
):
    """The probes compose runs answer 0 once the services they watch are up."""
    assert run(settings, "topics").returncode == 0  # the compose `topics` job
    # web_enabled as PROCESSOR_WEB_ENABLED in compose
    settings = settings.replace(processor={"web_enabled": True, "web_port": free_port()})
    worker, _ = pipeline.start_worker_ready(settings, tmp_path / "worker.log", timeout=180)
    procs.append(worker)
    check = probe("processor", Settings().processor.web_port, settings.processor.web_port)
    res = run(settings, *check)
    assert res.returncode == 0, res.stderr
    assert "✓ http://127.0.0.1:" in res.stderr

    sink = pipeline.start_sink(settings, tmp_path / "sink.log")
    procs.append(sink)
    res = pipeline.wait_for(lambda: run(settings, *probe("sink", 0, 0)), _ok, 60)
    port = free_port()
    command = [a if a != "8350" else str(port) for a in COMPOSE["services"]["dashboard"]["command"]]
    log = tmp_path / "dashboard.log"
    procs.append(pipeline.spawn([sys.executable, "-m", "moisson", *command], settings, log))
    res = pipeline.wait_for(lambda: run(settings, *probe("dashboard", 8350, port)), _ok, 60)
    assert f"✓ http://127.0.0.1:{port}/: HTTP 200" in res.stderr


def _ok(res: subprocess.CompletedProcess[str]) -> bool:
    return res.returncode == 0


def test_health_reaches_postgresql_as_a_user_whose_name_and_password_hold_url_characters(
    settings: Settings, run_id: str
):
    """Built from DATABASE_USER/PASSWORD/HOST/PORT/NAME, never split from a string."""
    from psycopg import sql
    from sqlalchemy import create_engine

    assert settings.database.url is not None
    given = make_url(settings.database.url.get_secret_value())
    user, password = f"ops@{run_id}:a/b", "p@ss:w/o%rd#z[/]"
    admin = create_engine(given.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")

    def execute(statement: str, *args: str) -> None:
        with admin.connect() as conn:
            parts = [sql.Identifier(user), *(sql.Literal(a) for a in args)]
            conn.connection.cursor().execute(sql.SQL(statement).format(*parts))

    execute("CREATE ROLE {} LOGIN PASSWORD {}", password)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    parts = {
        "DATABASE_HOST": given.query.get("host") or given.host,
        "DATABASE_PORT": str(given.port or 5432),
        "DATABASE_NAME": given.database,
        "DATABASE_USER": user,
        "DATABASE_PASSWORD": password,
    }
    try:
        res = subprocess.run(
            [sys.executable, "-m", "moisson", "health", "database"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **parts},
        )
    finally:
        execute("DROP ROLE {}")
        admin.dispose()
    assert res.returncode == 0, res.stderr
    assert "✓ database: PostgreSQL" in res.stderr
