"""The commands a user types, run as a user would run them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from moisson.stack.base import free_port, pid_alive

pytestmark = pytest.mark.integration

MOISSON = [sys.executable, "-m", "moisson"]


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [*MOISSON, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_teaches_and_shows_env_vars():
    res = run(["sensors", "--help"])
    assert res.returncode == 0
    assert "KAFKA_BOOTSTRAP_SERVERS" in res.stdout and "SENSORS_SEED" in res.stdout
    assert "--dry-run" in res.stdout


def test_dry_run_prints_decoded_events_without_kafka():
    res = run(["sensors", "--dry-run", "--count", "3", "--kafka", "127.0.0.1:1"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("'citizen_id'") == 3


def test_unreachable_kafka_is_one_clear_line():
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    dead = f"127.0.0.1:{port.getsockname()[1]}"
    port.close()
    res = run(["sensors", "--count", "5", "--kafka", dead], timeout=120)
    assert res.returncode == 1
    assert "cannot reach Kafka" in res.stderr and "Traceback" not in res.stderr


def test_stack_up_env_down_with_the_embedded_broker(tmp_path: Path):
    home = tmp_path / "stack"
    up = run(["stack", "up", "--broker", "embedded", "--home", str(home)], timeout=120)
    assert up.returncode == 0, up.stderr
    assert "Tansu" in up.stderr and "export KAFKA_BOOTSTRAP_SERVERS=" in up.stdout
    assert "export DATABASE_URL=" in up.stdout
    env = run(["stack", "env", "--home", str(home)])
    assert env.stdout == up.stdout
    import json

    pids = [s["pid"] for s in json.loads((home / "state.json").read_text())["services"]]
    assert all(pid_alive(p) for p in pids)
    down = run(["stack", "down", "--home", str(home)])
    assert down.returncode == 0 and down.stderr.count("stopped") == 2
    assert not any(pid_alive(p) for p in pids)
    assert run(["stack", "env", "--home", str(home)]).returncode == 1


def test_demo_runs_end_to_end_on_the_embedded_stack():
    """The README's first command, on the embedded broker and embedded PostgreSQL."""
    clean = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    args = [
        "demo",
        "--citizens",
        "150",
        "--days",
        "1",
        "--speed",
        "max",
        "--broker",
        "embedded",
        "--scenario",
        "none",
        "--exit-when-done",
        "--port",
        str(free_port()),
    ]
    res = subprocess.run(
        [*MOISSON, *args],
        capture_output=True,
        text=True,
        timeout=400,
        env={**clean, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Tansu" in res.stderr
    assert "events folded into 150 doubles" in res.stderr
    assert "every score equals the offline oracle's" in res.stderr
    assert "no process left behind" in res.stderr
    assert "on the blacklist" in res.stdout


def test_citizen_shows_the_file_the_harvester_keeps(settings):
    from processors.core.fold import fold_all
    from sinks.postgres.writer import PostgresSink
    from tests.factories import ev

    events = [ev("camera", behaviour="GATHERING", hours=i, citizen="c0000009") for i in range(6)]
    events.append(
        ev(
            "book",
            category="BANNED",
            hours=7,
            citizen="c0000009",
            title="<script>alert(1)</script>",
        )
    )
    double = fold_all(events)["c0000009"]
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    pg.write([double])
    pg.close()
    env = {
        "DATABASE_URL": settings.database.sqlalchemy_url(),
        "DATABASE_SCHEMA_NAME": settings.database.schema_name,
        "COLUMNS": "160",
    }
    res = run(["citizen", "c0000009"], env=env)
    assert res.returncode == 0, res.stderr
    assert "BLACKLISTED" in res.stdout and f"score {double['score']}" in res.stdout
    assert "Seen at a gathering or protest." in res.stdout
    assert "<script>alert(1)</script>" in res.stdout
    missing = run(["citizen", "c9999999"], env=env)
    assert missing.returncode == 1 and "no citizen" in missing.stderr
