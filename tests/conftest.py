"""Shared fixtures. Services are chosen in this order, per service:

1. an env var (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``REGISTRY_URL``);
2. testcontainers, when a Docker engine answers;
3. services the project starts itself (moisson.stack).

Failing to obtain a service is a test error, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from moisson.settings import Settings

_SERVICES: list[str] = []


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


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[str]:
    """A real Kafka broker for the whole session."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")  # the documented override
    if given:
        _say(request.config, f"Kafka: KAFKA_BOOTSTRAP_SERVERS={given}")
        yield given
        return
    if docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            _say(request.config, "Kafka: testcontainers (Docker)")
            yield kafka.get_bootstrap_server()
        return
    from moisson.stack import choose_broker

    s = Settings()
    broker, why = choose_broker(
        s.stack.broker, services_dir / "kafka", s.stack.kafka_version, s.stack.cache_dir
    )
    bootstrap = broker.start()
    _say(
        request.config,
        f"Kafka: {broker.describe()}, started by the project"
        f" in {broker.start_seconds:.1f}s ({why})",
    )
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[str]:
    """A real PostgreSQL for the whole session."""
    given = os.environ.get("DATABASE_URL")
    if given:
        _say(request.config, "PostgreSQL: DATABASE_URL")
        yield given
        return
    if docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:18", driver="psycopg") as pg:
            _say(request.config, "PostgreSQL: testcontainers (Docker)")
            yield pg.get_connection_url()
        return
    from moisson.stack import EmbeddedPostgres

    pg = EmbeddedPostgres(services_dir / "postgres")
    url = pg.start()
    _say(request.config, f"PostgreSQL: {pg.describe()}, started in {pg.start_seconds:.1f}s")
    try:
        yield url
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def schema_registry_url(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[str]:
    """A real Confluent-compatible schema registry (its ``/apis/ccompat/v7`` root).

    No testcontainers tier: Apicurio from Maven Central starts in seconds without Docker.
    """
    given = os.environ.get("REGISTRY_URL")
    if given:
        _say(request.config, f"Schema registry: REGISTRY_URL={given}")
        yield given
        return
    from moisson.stack import ApicurioRegistry

    s = Settings()
    registry = ApicurioRegistry(services_dir / "registry", s.stack.cache_dir)
    url = registry.start()
    _say(
        request.config,
        f"Schema registry: {registry.describe()}, started by the project in"
        f" {registry.start_seconds:.1f}s (fetch/unpack {registry.fetch_seconds:.1f}s)",
    )
    try:
        yield url
    finally:
        registry.stop()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, run_id: str, tmp_path: Path) -> Settings:
    """Settings for one test: fresh topics, consumer groups and database schema."""
    from pydantic import SecretStr

    s = Settings()
    s.kafka.bootstrap_servers = kafka_bootstrap
    s.database.url = SecretStr(database_url)
    s.database.schema_name = f"t_{run_id}"
    s.topics.prefix = f"t-{run_id}."
    s.processor.app_id = f"moisson-t-{run_id}"
    s.processor.data_dir = tmp_path / "faust"
    s.processor.rebalance_timeout_s = 3.0
    s.sink.group_id = f"sink-{run_id}"
    return s


@pytest.fixture
def procs() -> Iterator[list]:
    """Child processes a test started; stopped (and their logs shown) at teardown."""
    from moisson.pipeline import stop

    started: list = []
    yield started
    for proc in started:
        with contextlib.suppress(Exception):
            stop(proc)
