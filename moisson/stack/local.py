"""`moisson stack up|down|env`: start local services once, remember them, stop them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from moisson.settings import Settings
from moisson.stack.apicurio import ApicurioRegistry
from moisson.stack.base import Service, ServiceError, pid_alive, stop_pid
from moisson.stack.cluster import KafkaCluster
from moisson.stack.kafka import ApacheKafka, apache_kafka_possible, choose_broker
from moisson.stack.postgres import EmbeddedPostgres

STATE = "state.json"


@dataclass
class StackState:
    """What `stack up` started: one entry per service, and the env vars for clients."""

    services: list[dict[str, object]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return bool(self.services) and all(
            pid_alive(int(str(s["pid"]))) for s in self.services if s.get("pid")
        )


def load_state(home: Path) -> StackState | None:
    path = home / STATE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return StackState(services=data["services"], env=data["env"])


def save_state(home: Path, state: StackState) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / STATE).write_text(json.dumps({"services": state.services, "env": state.env}, indent=2))


def start_kafka(
    settings: Settings, workdir: Path, started: list[Service] | None = None
) -> tuple[Service, str]:
    """Start the broker (or, with ``STACK_BROKERS`` > 1, the cluster) the settings ask
    for; return it and why it was chosen. It joins ``started`` before it starts."""
    started = [] if started is None else started
    st = settings.stack
    if st.brokers > 1:
        if st.broker == "embedded":
            raise ServiceError(
                f"STACK_BROKERS={st.brokers} needs Apache Kafka; the embedded broker runs one node"
            )
        possible, why = apache_kafka_possible()
        if not possible:
            raise ServiceError(f"STACK_BROKERS={st.brokers} needs Apache Kafka, but {why}")
        cluster = KafkaCluster(workdir, st.kafka_version, st.cache_dir, st.brokers)
        started.append(cluster)
        cluster.start()
        return cluster, f"{st.brokers} nodes asked for (STACK_BROKERS); {why}"
    broker, why = choose_broker(st.broker, workdir, st.kafka_version, st.cache_dir)
    started.append(broker)
    broker.start()
    return broker, why


def _nodes(broker: Service) -> list[ApacheKafka | Service]:
    return list(broker.nodes) if isinstance(broker, KafkaCluster) else [broker]


def start_postgres(workdir: Path, started: list[Service] | None = None) -> EmbeddedPostgres:
    pg = EmbeddedPostgres(workdir)
    if started is not None:
        started.append(pg)
    pg.start()
    return pg


def up(
    settings: Settings, kafka: bool = True, database: bool = True, registry: bool = False
) -> tuple[StackState, list[str]]:
    """Start the services (unless already up) and record them; return state and messages.

    Interrupted (Ctrl-C, or a stop signal through :mod:`moisson.stopping`), it stops what
    it had started, records nothing, and raises KeyboardInterrupt.
    """
    home = settings.stack.home.resolve()
    current = load_state(home)
    if current is not None and current.alive():
        return current, ["the stack is already up"]
    if current is not None:
        down(settings)
    state, messages = StackState(), []
    started: list[Service] = []
    try:
        if kafka:
            broker, why = start_kafka(settings, home / "kafka", started)
            messages.append(f"{broker.describe()} — started in {broker.start_seconds:.1f}s ({why})")  # type: ignore[attr-defined]
            for node in _nodes(broker):
                state.services.append({"name": "kafka", "pid": node.pid, "what": node.describe()})
            state.env.update(broker.env())
        if database:
            pg = start_postgres(home / "postgres", started)
            messages.append(f"{pg.describe()} — started in {pg.start_seconds:.1f}s")
            state.services.append(
                {
                    "name": "postgres",
                    "pid": pg.pid,
                    "what": pg.describe(),
                    "workdir": str(pg.workdir),
                }
            )
            state.env.update(pg.env())
        if registry:
            reg = ApicurioRegistry(home / "registry", settings.stack.cache_dir)
            started.append(reg)
            reg.start()
            messages.append(
                f"{reg.describe()} — started in {reg.start_seconds:.1f}s"
                f" (fetch/unpack {reg.fetch_seconds:.1f}s)"
            )
            state.services.append({"name": "registry", "pid": reg.pid, "what": reg.describe()})
            state.env.update(reg.env())
    except KeyboardInterrupt:
        for svc in reversed(started):
            svc.stop()
        state = StackState()
        raise
    finally:
        save_state(home, state)
    return state, messages


def down(settings: Settings) -> list[str]:
    """Stop what `up` started; return what was stopped."""
    home = settings.stack.home.resolve()
    state = load_state(home)
    if state is None:
        return []
    stopped = []
    for svc in state.services:
        if svc["name"] == "postgres" and svc.get("workdir"):
            pg = EmbeddedPostgres(Path(str(svc["workdir"])))
            pg.pid = int(str(svc["pid"]))
            pg.stop()
        elif svc.get("pid"):
            stop_pid(int(str(svc["pid"])))
        stopped.append(str(svc["what"]))
    (home / STATE).unlink(missing_ok=True)
    return stopped
