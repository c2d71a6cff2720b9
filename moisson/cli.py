"""The ``moisson`` command line. Every flag falls back to an env var shown in ``--help``."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from moisson import __version__
from moisson.settings import SENSOR_KINDS, Settings, configure

console = Console(stderr=True)
out = Console()

_defaults = Settings()


def option(*decls: str, envvar: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A click option that falls back to ``envvar`` and says so in ``--help``."""
    return click.option(*decls, envvar=envvar, show_envvar=True, show_default=True, **kwargs)


kafka_option = option(
    "--kafka",
    "kafka",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    default=_defaults.kafka.bootstrap_servers,
    help="Kafka bootstrap servers (host:port,…).",
)
partitions_option = option(
    "--partitions",
    envvar="KAFKA_PARTITIONS",
    type=click.IntRange(min=1),
    default=_defaults.kafka.partitions,
    help="Partitions of each topic; the processor's table uses the same count.",
)
prefix_option = option(
    "--topic-prefix",
    envvar="TOPICS_PREFIX",
    default=_defaults.topics.prefix,
    help="Prefix of every topic name, to run side by side with another pipeline.",
)
database_option = option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    help="SQLAlchemy URL of PostgreSQL (default built from DATABASE_HOST/PORT/USER/PASSWORD/NAME).",
)


def settings_from(**flags: Any) -> Settings:
    """Settings from the environment with the given CLI flags applied, made process-wide."""
    s = Settings()
    if flags.get("kafka"):
        s.kafka.bootstrap_servers = flags["kafka"]
    if flags.get("partitions"):
        s.kafka.partitions = flags["partitions"]
    if flags.get("topic_prefix") is not None:
        s.topics.prefix = flags["topic_prefix"]
    if flags.get("database_url"):
        from pydantic import SecretStr

        s.database.url = SecretStr(flags["database_url"])
    return configure(s)


def fail(message: str, fix: str | None = None) -> None:
    """One clear line (and the fix), no traceback wall."""
    console.print(f"[bold red]error:[/] {message}")
    if fix:
        console.print(f"[yellow]fix:[/] {fix}")
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="moisson")
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """moisson: harvest a simulated city's everyday life into scored digital doubles.

    \b
    The pipeline:
      moisson sensors   simulated metro gates, tills and cameras publish Avro events to Kafka
      moisson process   a faust worker folds them into one double per citizen
      moisson sink      doubles are upserted into PostgreSQL
    \b
    Try `moisson demo` for all of it at once, or `moisson stack up` to start
    local Kafka and PostgreSQL and print the env vars to reach them.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# --- stack -----------------------------------------------------------------


@main.group()
def stack() -> None:
    """Start, stop and describe local Kafka and PostgreSQL (no Docker needed).

    Apache Kafka (fetched from Maven Central, run with java) is used when Java 17+
    and Maven are present; otherwise the embedded Tansu broker. STACK_BROKER forces one.
    """


broker_option = option(
    "--broker",
    envvar="STACK_BROKER",
    type=click.Choice(["auto", "apache", "embedded"]),
    default=_defaults.stack.broker,
    help="Which Kafka to start.",
)
home_option = option(
    "--home",
    envvar="STACK_HOME",
    type=click.Path(path_type=Path),
    default=_defaults.stack.home,
    help="Where the stack keeps its data and state.",
)


@stack.command("up")
@broker_option
@home_option
def stack_up(broker: str, home: Path) -> None:
    """Start the services in the background and print their env vars.

    Use them with: eval "$(moisson stack env)".
    """
    from moisson.stack import ServiceError, local

    s = Settings()
    s.stack.broker = broker  # type: ignore[assignment]
    s.stack.home = home
    try:
        with console.status("starting local services…"):
            state, messages = local.up(s)
    except ServiceError as exc:
        fail(str(exc), "see `moisson stack --help`; set STACK_BROKER=embedded to skip Java")
        return
    for m in messages:
        console.print(f"[green]✓[/] {m}")
    for k, v in state.env.items():
        out.print(f"export {k}='{v}'", highlight=False, soft_wrap=True)


@stack.command("down")
@home_option
def stack_down(home: Path) -> None:
    """Stop the services `stack up` started."""
    from moisson.stack import local

    s = Settings()
    s.stack.home = home
    stopped = local.down(s)
    for what in stopped:
        console.print(f"[green]✓[/] stopped {what}")
    if not stopped:
        console.print("nothing to stop")


@stack.command("env")
@home_option
def stack_env(home: Path) -> None:
    """Print `export` lines for the running stack."""
    from moisson.stack import local

    state = local.load_state(home.resolve())
    if state is None or not state.alive():
        fail("the local stack is not running", "moisson stack up")
        return
    for k, v in state.env.items():
        out.print(f"export {k}='{v}'", highlight=False, soft_wrap=True)


# --- sensors ---------------------------------------------------------------


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


@main.command()
@kafka_option
@partitions_option
@prefix_option
@option(
    "--seed",
    envvar="SENSORS_SEED",
    type=int,
    default=_defaults.sensors.seed,
    help="Seed of the population and of every event: same seed, same bytes.",
)
@option(
    "--citizens",
    envvar="SENSORS_CITIZENS",
    type=click.IntRange(min=1),
    default=_defaults.sensors.citizens,
    help="Size of the simulated population.",
)
@option(
    "--count",
    envvar="SENSORS_COUNT",
    type=click.IntRange(min=0),
    default=_defaults.sensors.count,
    help="How many events to publish.",
)
@option(
    "--kind",
    "kinds",
    envvar="SENSORS_KINDS",
    multiple=True,
    type=click.Choice(SENSOR_KINDS),
    help="Sensor kinds to run (repeat; default all).",
)
@click.option("--dry-run", is_flag=True, help="Print decoded events instead of publishing.")
def sensors(
    kafka: str,
    partitions: int,
    topic_prefix: str,
    seed: int,
    citizens: int,
    count: int,
    kinds: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Publish simulated sensor events (metro, payments, books, cameras) to Kafka."""
    from producers.city import generate_events

    s = settings_from(kafka=kafka, partitions=partitions, topic_prefix=topic_prefix)
    events = generate_events(seed, citizens, count, kinds or None)
    if dry_run:
        for ev in events:
            out.print({"kind": ev.kind, **ev.record})
        return
    publish(s, events, count)


def publish(s: Settings, events: Any, count: int) -> int:
    """Create the topics, then publish ``events`` with a progress bar."""
    from kafka.errors import KafkaError

    from producers.publisher import Publisher, ensure_topics

    try:
        created = ensure_topics(s)
        publisher = Publisher(s)
    except KafkaError as exc:
        fail(
            f"cannot reach Kafka at {s.kafka.bootstrap_servers}: {exc}",
            "start it (moisson stack up) or set KAFKA_BOOTSTRAP_SERVERS / --kafka",
        )
        return 0
    if created:
        console.print(f"created topics: {', '.join(created)}")
    started = time.monotonic()
    with progress_bar() as bar:
        task = bar.add_task("publishing", total=count, rate="")

        def advance(n: int) -> None:
            rate = bar.tasks[0].completed / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=n, rate=f"{rate:,.0f} ev/s")

        n = publisher.publish(events, advance)
    publisher.close()
    took = time.monotonic() - started
    console.print(
        f"[green]✓[/] published {n:,} events in {took:.1f}s ({n / max(took, 1e-6):,.0f} ev/s)"
    )
    return n


# --- process ---------------------------------------------------------------


@main.command(context_settings={"ignore_unknown_options": True})
@kafka_option
@partitions_option
@prefix_option
@option(
    "--app-id",
    envvar="PROCESSOR_APP_ID",
    default=_defaults.processor.app_id,
    help="faust app id (consumer group and changelog topic names).",
)
@option("--loglevel", envvar="PROCESSOR_LOGLEVEL", default="info", help="faust log level.")
def process(kafka: str, partitions: int, topic_prefix: str, app_id: str, loglevel: str) -> None:
    """Run a faust worker: the same as `faust -A processors.app worker`."""
    s = settings_from(kafka=kafka, partitions=partitions, topic_prefix=topic_prefix)
    s.processor.app_id = app_id
    from faust.cli.faust import cli as faust_cli

    from processors.app import app

    faust_cli.main(args=["worker", "-l", loglevel], app=app, prog_name="moisson process")


# --- sink ------------------------------------------------------------------


@main.command()
@kafka_option
@prefix_option
@database_option
@option(
    "--group-id",
    envvar="SINK_GROUP_ID",
    default=_defaults.sink.group_id,
    help="Kafka consumer group of the sink.",
)
@option(
    "--batch-size",
    envvar="SINK_BATCH_SIZE",
    type=click.IntRange(min=1),
    default=_defaults.sink.batch_size,
    help="Doubles per database transaction.",
)
def sink(
    kafka: str, topic_prefix: str, database_url: str | None, group_id: str, batch_size: int
) -> None:
    """Upsert doubles from Kafka into PostgreSQL (`citizen_profiles`), idempotently."""
    from sqlalchemy.exc import OperationalError

    from sinks.base import make_consumer, run_sink
    from sinks.postgres import PostgresSink

    s = settings_from(kafka=kafka, topic_prefix=topic_prefix, database_url=database_url)
    try:
        pg = PostgresSink(s.database.sqlalchemy_url(), s.database.schema_name)
    except OperationalError as exc:
        fail(
            f"cannot reach PostgreSQL: {exc.orig}",
            "start it (moisson stack up) or set DATABASE_URL",
        )
        return
    consumer = make_consumer(s.kafka.bootstrap_servers, s.topics.doubles, group_id)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(f"sink: {s.topics.doubles} → citizen_profiles (group {group_id})")
    stats = run_sink(consumer, pg, batch_size, s.sink.poll_timeout_ms, lambda: stopping)
    consumer.close()
    pg.close()
    console.print(f"sink stopped: {stats.consumed:,} doubles consumed in {stats.batches:,} batches")


# --- demo ------------------------------------------------------------------


@main.command()
@option(
    "--citizens",
    envvar="SENSORS_CITIZENS",
    type=click.IntRange(min=1),
    default=200,
    help="Size of the simulated population.",
)
@option(
    "--count",
    envvar="SENSORS_COUNT",
    type=click.IntRange(min=1),
    default=5000,
    help="How many events the sensors publish.",
)
@option(
    "--seed",
    envvar="SENSORS_SEED",
    type=int,
    default=_defaults.sensors.seed,
    help="Seed of the simulation.",
)
@option(
    "--broker",
    envvar="STACK_BROKER",
    type=click.Choice(["auto", "apache", "embedded"]),
    default="embedded",
    help="Which local Kafka to start when KAFKA_BOOTSTRAP_SERVERS is unset.",
)
@option(
    "--timeout",
    envvar="DEMO_TIMEOUT",
    type=float,
    default=180.0,
    help="Seconds to wait for the pipeline to catch up.",
)
def demo(citizens: int, count: int, seed: int, broker: str, timeout: float) -> None:
    """Run a short pipeline end to end and show who the harvester ranks highest and lowest.

    Local Kafka and PostgreSQL are started for the run (and stopped after) unless
    KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point at running ones.
    """
    from moisson.demo import run_demo

    run_demo(
        citizens=citizens,
        count=count,
        seed=seed,
        broker=broker,
        timeout=timeout,
        console=console,
        out=out,
        publish=publish,
        fail=fail,
    )


def profiles_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for col in ("citizen", "score", "events", "metro", "pay", "books", "cams", "why"):
        table.add_column(col, justify="right" if col not in ("citizen", "why") else "left")
    for r in rows:
        why = ", ".join(f"{k}×{v}" for k, v in sorted(r["rule_hits"].items()) if v)
        table.add_row(
            r["citizen_id"],
            str(r["score"]),
            str(r["version"]),
            str(r["metro_count"]),
            str(r["payment_count"]),
            str(r["book_count"]),
            str(r["camera_count"]),
            why,
        )
    return table


def tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


if __name__ == "__main__":
    main()
