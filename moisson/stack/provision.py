"""The one way to get services: use the ones the settings name, else start them.

The demo, the bench and the tests all call :func:`provide`; :func:`isolated` gives a
run its own topics, consumer groups and database schema on shared services.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import SecretStr

from moisson.settings import Settings


def _quiet(_line: str) -> None:
    pass


@contextlib.contextmanager
def provide(
    settings: Settings,
    workdir: Path,
    *,
    kafka: bool = True,
    database: bool = True,
    registry: bool = False,
    say: Callable[[str], None] = _quiet,
) -> Iterator[Settings]:
    """``settings`` with a Kafka, a PostgreSQL and (if asked) a schema registry: the
    configured ones, else local ones started under ``workdir`` and stopped on exit (the
    settings are frozen: use the ones yielded). ``say`` hears one line per service.

    Raises :class:`moisson.stack.ServiceError` when a service cannot be started.
    """
    from moisson.stack import ApicurioRegistry, EmbeddedPostgres, choose_broker

    with contextlib.ExitStack() as started:
        if kafka and not settings.kafka_given:
            broker, why = choose_broker(
                settings.stack.broker,
                workdir / "kafka",
                settings.stack.kafka_version,
                settings.stack.cache_dir,
            )
            say(f"starting Kafka ({why})…")
            started.callback(broker.stop)  # before start: a stop signal may come during it
            settings = settings.replace(kafka={"bootstrap_servers": broker.start()})
            say(f"Kafka: {broker.describe()}, started in {broker.start_seconds:.1f}s ({why})")
        elif kafka:
            say(f"Kafka: {settings.kafka.bootstrap_servers} (given)")
        if database and not settings.database_given:
            pg = EmbeddedPostgres(workdir / "postgres")
            say("starting PostgreSQL…")
            started.callback(pg.stop)
            settings = settings.replace(database={"url": SecretStr(pg.start())})
            say(f"PostgreSQL: {pg.describe()}, started in {pg.start_seconds:.1f}s")
        elif database:
            say("PostgreSQL: given")
        if registry and not settings.registry.url:
            reg = ApicurioRegistry(workdir / "registry", settings.stack.cache_dir)
            say("starting the schema registry…")
            started.callback(reg.stop)
            settings = settings.replace(registry={"url": reg.start()})
            say(
                f"Schema registry: {reg.describe()}, started in {reg.start_seconds:.1f}s"
                f" (fetch/unpack {reg.fetch_seconds:.1f}s)"
            )
        elif registry:
            say(f"Schema registry: {settings.registry.url} (given)")
        yield settings


def isolated(settings: Settings, name: str, run: str | None = None) -> Settings:
    """A copy of ``settings`` with its own topics, consumer groups and database schema,
    named after ``name`` and a fresh run id (or ``run``); its metrics endpoints take
    any free port (each logs its own), so runs side by side never collide."""
    run = run or uuid.uuid4().hex[:8]
    tag = f"{name}-{run}" if name else run
    return settings.replace(
        topics={"prefix": f"{tag}."},
        processor={"app_id": f"moisson-{tag}"},
        sink={"group_id": f"sink-{tag}"},
        database={"schema_name": re.sub(r"\W", "_", f"{name or 'run'}_{run}").lower()},
        metrics={"processor_port": 0, "sink_port": 0, "sensors_port": 0},
    )
