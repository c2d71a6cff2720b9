"""`moisson stack up --brokers 3` starts a real three-node Apache Kafka: three brokers,
RF-3 topics with three in-sync replicas, RF-3 consumer offsets; `stack down` stops all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moisson.stack.base import pid_alive

pytestmark = pytest.mark.integration


def moisson(*args: str, env: dict[str, str], timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "moisson", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def partitions(admin, topic: str, timeout: float = 30.0) -> list[dict]:
    """``topic``'s partitions as the cluster describes them, once it knows the topic."""
    deadline = time.monotonic() + timeout
    while True:
        (desc,) = admin.describe_topics([topic])
        if desc["error_code"] == 0 and desc["partitions"]:
            return list(desc["partitions"])
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}: {desc}")
        time.sleep(0.5)


def test_stack_up_three_brokers(tmp_path: Path):
    from kafka import KafkaAdminClient, KafkaConsumer

    home = tmp_path / "stack"
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_", "STACK_"))
    }
    up = moisson(
        "stack", "up", "--broker", "apache", "--brokers", "3", "--home", str(home), env=clean
    )
    pids = [s["pid"] for s in json.loads((home / "state.json").read_text())["services"]]
    try:
        assert up.returncode == 0, up.stderr
        assert "3 KRaft nodes (RF 3, min ISR 2" in " ".join(up.stderr.split())
        assert "export KAFKA_REPLICATION_FACTOR='3'" in up.stdout
        env = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        env = {k: v.strip("'") for k, v in env.items()}
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        assert len(bootstrap.split(",")) == 3
        assert len(pids) == 4 and all(pid_alive(p) for p in pids)  # 3 nodes and PostgreSQL

        made = moisson("topics", "--topic-prefix", "c3.", env={**clean, **env})
        assert made.returncode == 0, made.stdout + made.stderr

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            brokers = admin.describe_cluster()["brokers"]
            assert sorted(b["broker_id"] for b in brokers) == [1, 2, 3]
            for p in partitions(admin, "c3.sensors.metro"):
                assert len(p["replica_nodes"]) == 3, p
                assert sorted(p["isr_nodes"]) == [1, 2, 3], p
            consumer = KafkaConsumer(
                "c3.sensors.metro", bootstrap_servers=bootstrap, group_id="c3-probe"
            )
            consumer.poll(timeout_ms=3000)  # joining a group creates __consumer_offsets
            consumer.close()
            offsets = partitions(admin, "__consumer_offsets")
            assert len(offsets) == 8
            assert all(len(p["replica_nodes"]) == 3 for p in offsets), offsets
        finally:
            admin.close()
    finally:
        down = moisson("stack", "down", "--home", str(home), env=clean, timeout=120)
    assert down.returncode == 0, down.stderr
    assert down.stderr.count("stopped") == 4
    assert not any(pid_alive(p) for p in pids)
