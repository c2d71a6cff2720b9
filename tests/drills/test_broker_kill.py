"""The three-broker drill: kill -9 the broker that leads a sensor partition mid-stream.

A three-node Apache Kafka (``moisson.stack.cluster``: KRaft, RF 3, min ISR 2) carries a
paced replay through two workers and the sink. Halfway, the node leading partition 0
of the metro topic is killed with no warning; the survivors elect new leaders, the
producers (``acks=all``) and consumers follow them, and PostgreSQL must still equal
the oracle with nothing lost and nothing applied twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

from moisson.settings import Settings
from moisson.stack.cluster import KafkaCluster
from producers.publisher import make_producer
from tests.drills.harness import Pipeline, kill_points, send, sent, size

SIZE = size()
pytestmark = [pytest.mark.drills, pytest.mark.timeout(SIZE.timeout_s + 400)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    """Three Apache Kafka nodes for this drill alone."""
    s = Settings()
    c = KafkaCluster(tmp_path / "kafka", s.stack.kafka_version, s.stack.cache_dir, nodes=3)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def partitions(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """The cluster's view of ``topic``'s partitions: leader, replicas, in-sync replicas."""
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return sorted(described["partitions"], key=lambda p: p["partition_index"])


def test_three_brokers_leader_killed(drill: Pipeline, cluster: KafkaCluster):
    drill.settings = drill.settings.replace(
        kafka={"bootstrap_servers": cluster.bootstrap, "replication_factor": 3}
    )
    producer = make_producer(drill.settings)
    assert producer.config["acks"] == -1, "the sensors wait for every in-sync replica"
    producer.close()
    thread, outcome = send(drill.recording, drill.settings, SIZE.paced_s)
    drill.start_worker(0)
    drill.start_worker(1)
    drill.start_sink(ready=True)  # the kill must not fall into its start
    metro = drill.settings.topics.sensor("metro")
    for topic in (
        metro,
        "__consumer_offsets",
        f"{drill.settings.processor.app_id}-positions-changelog",
    ):
        assert {len(p["replica_nodes"]) for p in partitions(drill.settings, topic)} == {3}, topic

    (point,) = kill_points("broker-leader", 1, 0.3, 0.6)
    drill.wait_progress(drill.applied, point * drill.events, SIZE.timeout_s)
    victim = partitions(drill.settings, metro)[0]["leader_id"]
    led = [(metro, 0)]  # the partition whose leader dies, and where it stood
    at, stored_at = drill.positions()[led[0]], drill.stored()
    killed = time.monotonic()
    cluster.kill(victim)
    # The stall: until the harvester commits a position of that partition beyond the
    # one it had (the replay keeps feeding it), and until PostgreSQL moves on.
    stall = drill.wait_moving(lambda: drill.positions().get(led[0], 0), at, killed, SIZE.timeout_s)
    stored_stall = drill.wait_moving(drill.stored, stored_at, killed, SIZE.timeout_s)
    summary = sent(thread, outcome, SIZE.timeout_s)
    assert summary.sent == drill.recording.manifest["count"]
    after = partitions(drill.settings, metro)
    assert after[0]["leader_id"] not in (victim, -1), "a survivor leads partition 0"
    assert all(victim not in p["isr_nodes"] for p in after), "the dead node left every ISR"
    drill.finish(
        "3 brokers, leader kill -9",
        [point],
        [stall],
        killed,
        SIZE.timeout_s,
        notes=f"node {victim} (leader of {metro}[0]) killed; {metro}[0] stalled {stall:.1f}s, "
        f"PostgreSQL {stored_stall:.1f}s; left down (2 of 3 in sync, min ISR 2)",
    )
    assert all(w.poll() is None for w in drill.workers.values()), "both workers survived"
