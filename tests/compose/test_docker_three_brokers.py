"""docker-compose.cluster.yml for real: three brokers, the leader of a sensor partition is
killed in the middle of a run, and nothing is lost (`make compose-test`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kafka.admin import KafkaAdminClient

from tests.compose.live import Compose, down_cleanly, stack_up
from tests.compose.project import BASE, CLUSTER
from tests.compose.report import CLUSTER_OVERRIDE, OVERRIDE, record_and_verify, services

pytestmark = pytest.mark.docker

FILES = [BASE, CLUSTER, OVERRIDE, CLUSTER_OVERRIDE]
HOST_BOOTSTRAP = "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9095"
#: Slow enough (about 16 s) for a broker to die in the middle of it.
RUN = ["sensors", "--days", "1", "--seed", "7", "--rate", "500"]
TOPIC = "sensors.metro"


def broker_services() -> dict[int, str]:
    """KAFKA_NODE_ID -> the service that runs that broker."""
    out = {}
    for f in (BASE, CLUSTER):
        for name, service in yaml.safe_load(f.read_text())["services"].items():
            node = (service.get("environment") or {}).get("KAFKA_NODE_ID")
            if node is not None:
                out[int(node)] = name
    return out


def leader_of(topic: str, partition: int) -> int:
    admin = KafkaAdminClient(bootstrap_servers=HOST_BOOTSTRAP, request_timeout_ms=10_000)
    try:
        (described,) = admin.describe_topics([topic])
        parts = described["partitions"]
        return int(next(p["leader_id"] for p in parts if p["partition_index"] == partition))
    finally:
        admin.close()


@pytest.fixture(scope="module")
def cluster(
    docker_env: dict[str, str], report: dict[str, Any]
) -> Iterator[tuple[Compose, dict[str, Any]]]:
    compose = Compose("moisson-ci-cluster", FILES, docker_env)
    got: dict[str, Any] = {"services": services(FILES)}
    report["cluster"] = got
    with stack_up(compose, "cluster", got, timeout=360):
        compose("stop", "sensors")  # the shipped week; the run below is shorter
        yield compose, got


def test_killing_a_partition_leader_mid_run_loses_nothing(
    cluster: tuple[Compose, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
):
    compose, got = cluster
    leader = broker_services()[leader_of(TOPIC, 0)]
    run = subprocess.Popen(
        compose.argv("run", "--rm", "--no-deps", "sensors", *RUN),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=compose.env,
    )  # fmt: skip
    time.sleep(6)
    assert run.poll() is None, "the run ended before the broker could be killed"
    compose("kill", leader)
    got["killed"] = f"{leader} (leader of {TOPIC}[0]), SIGKILL, about 6 s into the run"
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 0, out[-3000:]
    recording = tmp_path_factory.mktemp("recording") / "cluster"
    counts = record_and_verify(recording, HOST_BOOTSTRAP)
    got["verified"] = counts
    assert counts["events"] > 0
    assert (counts["lost"], counts["twice"]) == (0, 0)
    new_leader = broker_services()[leader_of(TOPIC, 0)]
    got["new_leader"] = new_leader
    assert new_leader != leader


def test_cluster_down_is_clean(cluster: tuple[Compose, dict[str, Any]]):
    compose, got = cluster
    killed = down_cleanly(compose, "cluster", got)
    assert got["down_s"] < 40
    assert killed == []
