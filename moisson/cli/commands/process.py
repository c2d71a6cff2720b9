"""``moisson process``: a faust worker (the harvester)."""

from __future__ import annotations

import click

from moisson.cli.base import (
    fail,
    load_rules_or_fail,
    settings_from,
)
from moisson.cli.params import (
    DEFAULTS,
    kafka_option,
    metrics_port_option,
    option,
    partitions_option,
    prefix_option,
)


@click.command(context_settings={"ignore_unknown_options": True})
@kafka_option
@partitions_option
@prefix_option
@option(
    "--app-id",
    envvar="PROCESSOR_APP_ID",
    default=DEFAULTS.processor.app_id,
    help="faust app id (consumer group and changelog topic names).",
)
@option("--loglevel", envvar="PROCESSOR_LOGLEVEL", default="info", help="faust log level.")
@metrics_port_option("METRICS_PROCESSOR_PORT", DEFAULTS.metrics.processor_port)
def process(
    kafka: str, partitions: int, topic_prefix: str, app_id: str, loglevel: str, metrics_port: int
) -> None:
    """Run a faust worker: the same as `faust -A processors.worker worker`.

    Its metrics are served on http://METRICS_HOST:METRICS_PROCESSOR_PORT/metrics once it
    has started (the log says where).
    """
    from moisson import stopping

    stopping.on_stop_signals()  # until faust's worker takes the signals over
    s = settings_from(kafka=kafka, partitions=partitions, topic_prefix=topic_prefix)
    s.processor.app_id = app_id
    s.metrics.processor_port = metrics_port
    if s.metrics.enabled and metrics_port:
        from moisson.metrics.serve import cannot_listen
        from moisson.stack.base import port_open

        if port_open(s.metrics.host, metrics_port):  # before faust starts, not in its crash
            err = cannot_listen(
                "processor", s.metrics.host, metrics_port, "METRICS_PROCESSOR_PORT", "taken"
            )
            fail(str(err), err.fix)
    load_rules_or_fail(s.processor.rules_path)
    from faust.cli.faust import cli as faust_cli

    from moisson.ops.pipeline import worker_args
    from processors.worker import build

    faust_cli.main(args=worker_args(s, loglevel), app=build(s), prog_name="moisson process")
