"""``moisson stack up|down|env``: local Kafka and PostgreSQL without Docker."""

from __future__ import annotations

from pathlib import Path

import click

from moisson.cli.base import (
    console,
    fail,
    out,
)
from moisson.cli.params import (
    DEFAULTS,
    broker_option,
    home_option,
    option,
)
from moisson.settings import Settings


@click.group()
def stack() -> None:
    """Start, stop and describe local Kafka and PostgreSQL (no Docker needed).

    Apache Kafka (fetched from Maven Central, run with java) is used when Java 17+
    and Maven are present; otherwise the embedded Tansu broker. STACK_BROKER forces one.
    """


@stack.command("up")
@broker_option
@home_option
@option(
    "--brokers",
    envvar="STACK_BROKERS",
    type=click.IntRange(1, 5),
    default=DEFAULTS.stack.brokers,
    help="Apache Kafka nodes: 3 starts a KRaft quorum of three (every topic RF 3,"
    " min.insync.replicas 2) and exports KAFKA_REPLICATION_FACTOR=3.",
)
@option(
    "--registry/--no-registry",
    envvar="STACK_REGISTRY",
    default=False,
    help="Also start Apicurio Registry (Java 21+, ~160 MB from Maven Central once) and"
    " export REGISTRY_URL: the sensors then write the schema registry framing.",
)
def stack_up(broker: str, home: Path, brokers: int, registry: bool) -> None:
    """Start the services in the background and print their env vars.

    Use them with: eval "$(moisson stack env)". `--brokers 3` starts three Apache Kafka
    nodes from the same classpath (a broker can then be killed and the cluster goes on).
    """
    from moisson import stopping
    from moisson.stack import ServiceError, local

    stopping.on_stop_signals()
    if brokers > 1 and broker == "embedded":
        fail(
            f"--brokers {brokers} needs Apache Kafka; the embedded broker runs one node",
            "drop --broker embedded (Apache Kafka needs Java 17+ and Maven) or use --brokers 1",
        )
    s = Settings().replace(stack={"broker": broker, "brokers": brokers, "home": home})
    try:
        with console.status("starting local services…"):
            state, messages = local.up(s, registry=registry)
    except ServiceError as exc:
        fail(str(exc), "see `moisson stack --help`; set STACK_BROKER=embedded to skip Java")
    except KeyboardInterrupt:
        fail("stopped before the stack was up; what had started was stopped")
    for m in messages:
        console.print(f"[green]✓[/] {m}")
    for k, v in state.env.items():
        out.print(f"export {k}='{v}'", highlight=False, soft_wrap=True)


@stack.command("down")
@home_option
def stack_down(home: Path) -> None:
    """Stop the services `stack up` started."""
    from moisson.stack import local

    s = Settings().replace(stack={"home": home})
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
    for k, v in state.env.items():
        out.print(f"export {k}='{v}'", highlight=False, soft_wrap=True)
