"""The options several commands share, each declared once; every one falls back to an
env var that ``--help`` shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from moisson.settings import Settings
from producers.scenarios import SCENARIOS

DEFAULTS = Settings.model_construct()  # the documented defaults, not this shell's env


def option(*decls: str, envvar: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A click option that falls back to ``envvar`` and says so in ``--help``."""
    return click.option(*decls, envvar=envvar, show_envvar=True, show_default=True, **kwargs)


kafka_option = option(
    "--kafka",
    "kafka",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    default=DEFAULTS.kafka.bootstrap_servers,
    help="Kafka bootstrap servers (host:port,…).",
)


partitions_option = option(
    "--partitions",
    envvar="KAFKA_PARTITIONS",
    type=click.IntRange(min=1),
    default=DEFAULTS.kafka.partitions,
    help="Partitions of each topic; the processor's table uses the same count.",
)


prefix_option = option(
    "--topic-prefix",
    envvar="TOPICS_PREFIX",
    default=DEFAULTS.topics.prefix,
    help="Prefix of every topic name, to run side by side with another pipeline.",
)


seed_option = option(
    "--seed",
    envvar="SENSORS_SEED",
    type=int,
    default=DEFAULTS.sensors.seed,
    help="Seed of the population and of every event: same seed, same bytes.",
)


citizens_option = option(
    "--citizens",
    envvar="SENSORS_CITIZENS",
    type=click.IntRange(min=1),
    default=DEFAULTS.sensors.citizens,
    help="Size of the simulated population.",
)


#: The demo's crowd (``moisson demo`` and ``moisson whatif`` simulate the same city).
crowd_option = option(
    "--citizens",
    envvar="SENSORS_CITIZENS",
    type=click.IntRange(min=1),
    default=300,
    help="Size of the simulated crowd (the scenario's cast comes on top).",
)


scenario_option = option(
    "--scenario",
    envvar="DEMO_SCENARIO",
    type=click.Choice([*SCENARIOS, "none"]),
    default="lulu",
    help="A scripted story among the crowd: 'lulu' is Lulu's week.",
)


database_option = option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    help="SQLAlchemy URL of PostgreSQL (default built from DATABASE_HOST/PORT/USER/PASSWORD/NAME).",
)


broker_option = option(
    "--broker",
    envvar="STACK_BROKER",
    type=click.Choice(["auto", "apache", "embedded"]),
    default=DEFAULTS.stack.broker,
    help="Which Kafka to start.",
)

#: The demo's and the classroom's: the embedded broker unless told otherwise (no JVM).
local_broker_option = option(
    "--broker",
    envvar="STACK_BROKER",
    type=click.Choice(["auto", "apache", "embedded"]),
    default="embedded",
    help="Local Kafka to start when KAFKA_BOOTSTRAP_SERVERS is unset.",
)


home_option = option(
    "--home",
    envvar="STACK_HOME",
    type=click.Path(path_type=Path),
    default=DEFAULTS.stack.home,
    help="Where the stack keeps its data and state.",
)


def days_option(default: int | None, help: str) -> Callable[[Any], Any]:
    """``--days``: simulated days (``SENSORS_DAYS``); each command says its default."""
    return option(
        "--days", envvar="SENSORS_DAYS", type=click.IntRange(min=1), default=default, help=help
    )


def speed_option(envvar: str, default: str, help: str) -> Callable[[Any], Any]:
    """``--speed``: simulated seconds per real second, or ``max`` (see ``parse_speed``)."""
    return option("--speed", envvar=envvar, default=default, help=help)


def timeout_option(
    envvar: str, default: float, help: str, type: Any = float
) -> Callable[[Any], Any]:
    """``--timeout``: seconds to wait, from the command's own env var."""
    return option("--timeout", envvar=envvar, type=type, default=default, help=help)


def metrics_port_option(envvar: str, default: int) -> Callable[[Any], Any]:
    """``--metrics-port`` of one service (METRICS_ENABLED=false turns every one off)."""
    return option(
        "--metrics-port",
        envvar=envvar,
        type=click.IntRange(0, 65535),
        default=default,
        help="Serve Prometheus metrics on http://METRICS_HOST:PORT/metrics (0: any free"
        " port, printed).",
    )
