"""Configuration errors fail at start-up with one clear message: no hang, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REFUSED = "127.0.0.1:1"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "moisson", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,  # a hang fails the test
    )


def one_clear_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    text = res.stdout + res.stderr
    assert res.returncode != 0, text
    assert "Traceback" not in text, text
    assert text.startswith("error: "), text
    assert len(text.strip().splitlines()) <= 3, text
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture
def listening() -> Iterator[str]:
    """Something that accepts TCP connections, so the Kafka check passes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    "command",
    [["process"], ["sink"], ["sensors", "--count", "5"], ["dlq"], ["record", "--out", "x"]],
)
def test_an_unreachable_kafka(command, tmp_path: Path):
    res = run(*command, KAFKA_BOOTSTRAP_SERVERS=REFUSED, DATABASE_URL="postgresql://a@h/d")
    one_clear_error(res, "cannot reach Kafka", REFUSED, "KAFKA_BOOTSTRAP_SERVERS")


def test_an_unknown_kafka_host():
    res = run("dlq", KAFKA_BOOTSTRAP_SERVERS="kafka.invalid:9092")
    one_clear_error(res, "kafka.invalid:9092: unknown host")


def test_a_bootstrap_address_without_a_port():
    one_clear_error(run("dlq", KAFKA_BOOTSTRAP_SERVERS="kafka"), "is not host:port")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "not a URL"),
        ("mysql://u:hunter2@db/x", "needs postgresql://"),
        ("postgresql://u:hunter2@tail1@db/x", "percent-encode"),  # the tail once was the host
        ("postgresql://u:hunter2@tail1:tail2/tail3@db/x", "percent-encode"),
    ],
)
def test_a_bad_database_url_says_why_and_hides_the_password(url, says):
    text = one_clear_error(run("citizen", "c0000001", DATABASE_URL=url), "DATABASE_URL", says)
    assert "hunter2" not in text and "tail" not in text


def test_an_unreachable_database(listening):
    url = "postgresql://moisson:hunter2@127.0.0.1:1/moisson"
    text = one_clear_error(
        run("sink", KAFKA_BOOTSTRAP_SERVERS=listening, DATABASE_URL=url), "PostgreSQL"
    )
    assert "hunter2" not in text


def test_a_password_with_url_characters_stays_out_of_the_error(listening):
    password = "hunter2@tail1:tail2/tail3%tail4#tail5"
    res = run(
        "sink",
        KAFKA_BOOTSTRAP_SERVERS=listening,
        DATABASE_HOST="127.0.0.1",
        DATABASE_PORT="1",
        DATABASE_PASSWORD=password,
    )
    text = one_clear_error(res, "cannot reach PostgreSQL", '"127.0.0.1", port 1')
    assert "hunter2" not in text and "tail" not in text


def test_a_malformed_setting():
    one_clear_error(run("dlq", KAFKA_PARTITIONS="many"), "KAFKA_PARTITIONS")


@pytest.mark.parametrize("command", [["rules"], ["process"]])
def test_a_malformed_rules_file(command, tmp_path: Path, listening):
    bad = tmp_path / "rules.toml"
    bad.write_text("this is = not [valid toml")
    res = run(*command, PROCESSOR_RULES_PATH=str(bad), KAFKA_BOOTSTRAP_SERVERS=listening)
    one_clear_error(res, str(bad), "PROCESSOR_RULES_PATH")
