"""The ``moisson`` group: the entry that assembles one module per command."""

from __future__ import annotations

import logging

import click

from moisson import __version__
from moisson.errors import MoissonError


class Moisson(click.Group):
    """The group whose commands may raise any :class:`MoissonError`: it is shown here,
    the one place, as an ``error:`` line and its ``fix:`` line (exit status 1)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MoissonError as exc:
            from moisson.cli.base import fail_with

            fail_with(exc)


@click.group(
    cls=Moisson,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


def _assemble() -> None:
    """Add one command (or group) per module of :mod:`moisson.cli.commands`."""
    from moisson.cli.commands import (
        citizen,
        classroom,
        dashboard,
        demo,
        dlq,
        health,
        process,
        record,
        replay,
        rules,
        sensors,
        simulate,
        sink,
        stack,
        topics,
        verify,
        whatif,
    )

    for command in (
        stack.stack,
        sensors.sensors,
        simulate.simulate,
        record.record,
        replay.replay,
        verify.verify,
        dlq.dlq,
        rules.rules,
        citizen.citizen,
        process.process,
        sink.sink,
        demo.demo,
        classroom.classroom,
        dashboard.dashboard,
        topics.topics,
        health.health,
        whatif.whatif,
    ):
        main.add_command(command)


_assemble()
