"""``moisson health``: a container health check."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from rich.text import Text

from moisson.cli.base import (
    console,
    settings_from,
)
from moisson.cli.params import (
    database_option,
    kafka_option,
    prefix_option,
    timeout_option,
)
from moisson.panels import shown
from moisson.stack.health import database_ok, http_ok, kafka_ok

HEALTH_CHECKS = ("kafka", "database")


def _checks(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> Any:
    unknown = [
        c for c in value if c not in HEALTH_CHECKS and not c.startswith(("http://", "https://"))
    ]
    if unknown:
        raise click.BadParameter(f"unknown check(s): {', '.join(unknown)}")
    return value


@click.command()
@click.argument("checks", nargs=-1, required=True, callback=_checks)
@kafka_option
@prefix_option
@database_option
@timeout_option(
    "HEALTH_TIMEOUT", 5.0, "Seconds each check may take.", type=click.FloatRange(min=0.1)
)
def health(
    checks: tuple[str, ...],
    kafka: str,
    topic_prefix: str,
    database_url: str | None,
    timeout: float,
) -> None:
    """Exit 0 only when every CHECK passes: a container health check.

    \b
    CHECK is one of:
      kafka      the brokers answer and moisson's topics exist
      database   PostgreSQL answers a query
      URL        an http:// address answers 2xx (the dashboard, faust's web port)
    \b
    Example: moisson health kafka database
    """
    s = settings_from(
        kafka=kafka, topic_prefix=topic_prefix, database_url=database_url, offline=True
    )  # each check reports its own failure
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the ✗ line says what failed
    probes = {"kafka": kafka_ok, "database": database_ok}
    failed = 0
    for check in checks:
        try:
            detail = probes.get(check, http_ok)(s, check, timeout)
        except Exception as exc:  # any failure is the answer; the probe says which
            failed += 1
            line = Text.assemble(("✗", "red"), " ", shown(check), ": ", shown(exc))
            console.print(line, highlight=False, soft_wrap=True)
        else:
            line = Text.assemble(("✓", "green"), " ", shown(check), ": ", shown(detail))
            console.print(line, highlight=False, soft_wrap=True)
    if failed:
        sys.exit(1)
