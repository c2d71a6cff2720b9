"""`moisson topics` and `moisson health`, the commands compose runs, without services."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from moisson.cli import main


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_health_refuses_an_unknown_check():
    res = CliRunner().invoke(main, ["health", "kafka", "postgres"])
    assert res.exit_code == 2
    assert "unknown check(s): postgres" in res.output


def test_health_fails_on_every_unreachable_dependency_with_one_line_each():
    dead = dead_address()
    res = CliRunner().invoke(
        main,
        [
            "health",
            "kafka",
            "database",
            f"http://{dead}/",
            "--kafka",
            dead,
            "--database-url",
            f"postgresql://moisson:x@{dead}/moisson",
            "--timeout",
            "1",
        ],
    )
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.startswith("✗ ")]
    assert [line.split(":")[0] for line in lines] == ["✗ kafka", "✗ database", "✗ http"]
    assert "Traceback" not in res.output
