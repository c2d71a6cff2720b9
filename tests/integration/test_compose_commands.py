"""`moisson topics` and `moisson health` (what compose runs) against real Kafka and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

from kafka import KafkaAdminClient

from moisson.cli import wanted_topics
from moisson.settings import Settings, settings_env


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
    settings.kafka.partitions = 3
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
    settings.kafka.replication_factor = 3  # one broker in the tests
    res = run(settings, "topics")
    assert res.returncode == 1
    assert "Kafka did not create" in res.stderr
    assert "KAFKA_REPLICATION_FACTOR" in res.stderr
