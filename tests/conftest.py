"""Shared fixtures. Services are chosen in this order, per service:

1. an env var (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``REGISTRY_URL``);
2. testcontainers, when a Docker engine answers (tests only);
3. services the project starts itself (``moisson.stack.provision.provide``, as the
   demo and the bench do).

Each test's ``settings`` has its own topics, groups and schema on them
(``moisson.stack.provision.isolated``). ``tansu_settings`` is the same on an embedded
Tansu broker the session starts itself (0.2 s), for the tests that must hold on both.

Failing to obtain a service is a test error, never a skip.
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from moisson.settings import Settings
from moisson.stack.provision import isolated, provide

_SERVICES: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """The commands the tests start take SIGINT and SIGHUP as from a terminal, whoever
    started the suite: a shell's background job (``.ci/run &``) ignores SIGINT, ``nohup``
    SIGHUP, children inherit that, and moisson keeps a signal ignored at start ignored
    (tests/moisson/test_stopping.py tests that on purpose)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _say(config: pytest.Config, line: str) -> None:
    """Record which service a session used; the terminal summary prints it."""
    _SERVICES.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SERVICES:
        terminalreporter.section("services used")
        for line in _SERVICES:
            terminalreporter.write_line(line)


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


def _started(line: str) -> None:
    """What :func:`provide` says of a service it started, as the summary has always put it."""
    if line.startswith("starting "):
        return
    if not line.startswith("PostgreSQL:"):
        line = line.replace(", started in ", ", started by the project in ", 1)
    _SERVICES.append(line)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[str]:
    """A real Kafka broker for the whole session."""
    s = Settings()
    if s.kafka_given:  # KAFKA_BOOTSTRAP_SERVERS, the documented override
        _say(request.config, f"Kafka: KAFKA_BOOTSTRAP_SERVERS={s.kafka.bootstrap_servers}")
        yield s.kafka.bootstrap_servers
        return
    if docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            _say(request.config, "Kafka: testcontainers (Docker)")
            yield kafka.get_bootstrap_server()
        return
    with provide(s, services_dir, kafka=True, database=False, say=_started) as s:
        yield s.kafka.bootstrap_servers


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[str]:
    """A real PostgreSQL for the whole session."""
    s = Settings()
    if s.database_given:
        _say(request.config, "PostgreSQL: DATABASE_URL")
        yield s.database.sqlalchemy_url()
        return
    if docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:18", driver="psycopg") as pg:
            _say(request.config, "PostgreSQL: testcontainers (Docker)")
            yield pg.get_connection_url()
        return
    with provide(s, services_dir, kafka=False, database=True, say=_started) as s:
        yield s.database.sqlalchemy_url()


@pytest.fixture(scope="session")
def schema_registry_url(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[str]:
    """A real Confluent-compatible schema registry (its ``/apis/ccompat/v7`` root).

    No testcontainers tier: Apicurio from Maven Central starts in seconds without Docker.
    """
    s = Settings()
    if s.registry.url:
        _say(request.config, f"Schema registry: REGISTRY_URL={s.registry.url}")
        yield s.registry.url
        return
    with provide(s, services_dir, kafka=False, database=False, registry=True, say=_started) as s:
        assert s.registry.url is not None
        yield s.registry.url


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def tansu_bootstrap(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[str]:
    """The embedded Tansu broker (the demo's), whatever Kafka the session uses: the
    tests that must hold on both brokers take it (``tansu_settings``)."""
    from moisson.stack import Tansu

    broker = Tansu(services_dir / "tansu")
    bootstrap = broker.start()
    _say(request.config, f"Tansu: {broker.describe()}, started in {broker.start_seconds:.1f}s")
    try:
        yield bootstrap
    finally:
        broker.stop()


def _test_settings(bootstrap: str, database_url: str, run_id: str, tmp_path: Path) -> Settings:
    from pydantic import SecretStr

    shared = Settings().replace(
        kafka={"bootstrap_servers": bootstrap}, database={"url": SecretStr(database_url)}
    )
    return isolated(shared, "t", run_id).replace(
        sink={"group_id": f"sink-{run_id}"},
        processor={"data_dir": tmp_path / "faust", "rebalance_timeout_s": 3.0},
    )


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, run_id: str, tmp_path: Path) -> Settings:
    """Settings for one test: fresh topics, consumer groups and database schema
    (``t-{run_id}.`` topics, ``t_{run_id}`` schema, ``moisson-t-{run_id}`` app id)."""
    return _test_settings(kafka_bootstrap, database_url, run_id, tmp_path)


@pytest.fixture
def tansu_settings(
    tansu_bootstrap: str, database_url: str, run_id: str, tmp_path: Path
) -> Settings:
    """:func:`settings` on the embedded Tansu broker."""
    return _test_settings(tansu_bootstrap, database_url, run_id, tmp_path)


@pytest.fixture
def procs() -> Iterator[list]:
    """Child processes a test started; stopped together at teardown (SIGTERM to all at
    once, SIGKILL to any still running 20 s later, as :func:`stop` gave each in turn)."""
    from moisson.ops.pipeline import stop_all

    started: list = []
    yield started
    with contextlib.suppress(Exception):
        stop_all(started, timeout=20.0)


SERVICE_FIXTURES = frozenset(
    {"kafka_bootstrap", "tansu_bootstrap", "database_url", "schema_registry_url"}
)
SERVICE_MARKERS = ("integration", "drills", "browser")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--docker",
        action="store_true",
        help="run only the tests marked docker (make compose-test): docker-compose.yml "
        "built and run on a real Docker engine. Without it they are deselected.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that needs a real service must say so with a marker, so that ``make unit``
    (``-m "not integration and not drills and not browser and not docker and not compose"``)
    never starts one.

    The docker tests install and start a Docker engine as root: they run only with
    ``--docker``, and then alone (``make compose-test``)."""
    docker = config.getoption("--docker")
    chosen = [i for i in items if bool(i.get_closest_marker("docker")) == docker]
    if len(chosen) != len(items):
        keep = set(map(id, chosen))
        config.hook.pytest_deselected(items=[i for i in items if id(i) not in keep])
        items[:] = chosen
    unmarked = [
        item.nodeid
        for item in items
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        and not any(item.get_closest_marker(m) for m in SERVICE_MARKERS)
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use a real service but carry none of the markers "
            f"{', '.join(SERVICE_MARKERS)}: {', '.join(unmarked[:5])}"
            f"{' …' if len(unmarked) > 5 else ''}\n"
            "fix: add `pytestmark = pytest.mark.integration` (or drills, browser) to the module"
        )
