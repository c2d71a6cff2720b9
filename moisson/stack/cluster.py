"""A three-node Apache Kafka on loopback: the cluster a broker loss can be drilled on.

Each node is a combined broker and controller (KRaft) from the same Maven classpath as
:class:`~moisson.stack.kafka.ApacheKafka`. The quorum is static (all nodes vote), and
every topic, internal ones included, is replicated on all nodes with
``min.insync.replicas`` one less: with ``acks=all`` a write survives the loss of any
one node, and the cluster keeps accepting writes with one node down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from moisson.stack.base import ServiceError, free_port
from moisson.stack.kafka import ApacheKafka, LoopbackKafka, resolve_classpath


class KafkaCluster(LoopbackKafka):
    """``nodes`` combined KRaft nodes (node ids 1…n) under ``workdir/node-<id>``."""

    def __init__(self, workdir: Path, version: str, cache_dir: Path, nodes: int = 3) -> None:
        if nodes < 2:
            raise ServiceError("a cluster needs at least 2 nodes; use ApacheKafka for one")
        self.workdir, self.version, self.cache_dir = workdir, version, cache_dir
        self.nodes: list[ApacheKafka] = []
        for node_id in range(1, nodes + 1):
            node = ApacheKafka(workdir / f"node-{node_id}", version, cache_dir)
            node.node_id, node.replication = node_id, nodes
            node.heap = "-Xmx384m"  # three JVMs beside the pipeline on two cores
            self.nodes.append(node)
        self.start_seconds = 0.0

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def replication(self) -> int:
        return len(self.nodes)

    def env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_REPLICATION_FACTOR": str(self.replication),
        }

    def describe(self) -> str:
        n = len(self.nodes)
        return (
            f"Apache Kafka {self.version}, {n} KRaft nodes (RF {n}, min ISR {n - 1}, "
            f"from Maven Central) at {self.bootstrap}"
        )

    def node(self, node_id: int) -> ApacheKafka:
        return self.nodes[node_id - 1]

    def start(self, timeout: float = 180.0) -> str:
        """Format every node for one cluster id, start them together (a static quorum
        elects a leader only once a majority runs), and wait until all have registered."""
        lib = resolve_classpath(self.version, self.cache_dir)
        started = time.monotonic()
        for n in self.nodes:
            n.port, n.ctrl = free_port(), free_port()
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.ctrl}" for n in self.nodes)
        for n in self.nodes:
            n.voters = voters
        cluster_id = self.nodes[0].random_cluster_id(lib)
        for n in self.nodes:
            n.prepare(lib, cluster_id)
        try:
            for n in self.nodes:
                n.launch(lib)
            for n in self.nodes:
                n.wait_listening(timeout)
            self.wait_brokers(len(self.nodes), timeout - (time.monotonic() - started))
        except BaseException:
            self.stop()
            raise
        self.pid = self.nodes[0].pid
        self.start_seconds = time.monotonic() - started
        return self.bootstrap

    def wait_brokers(self, count: int, timeout: float) -> None:
        """Wait until the cluster's metadata lists ``count`` brokers."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + max(timeout, 5.0)
        seen = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(KafkaError, OSError):
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
                try:
                    seen = len(admin.describe_cluster()["brokers"])
                finally:
                    admin.close()
                if seen >= count:
                    return
            time.sleep(0.5)
        raise ServiceError(f"{self.describe()}: {seen} of {count} brokers registered in time")

    def kill(self, node_id: int) -> None:
        """``kill -9`` one node: no shutdown, no leadership handed over."""
        node = self.node(node_id)
        if node.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        if node.proc is not None:
            node.proc.wait(10)
        node.pid = None

    def resume(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a stopped or killed node again on its data and ports."""
        self.node(node_id).resume(timeout)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
        self.pid = None

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes if n.pid is not None]
