"""``moisson process``: a faust worker (the harvester)."""

from __future__ import annotations

import click

from moisson.cli.base import (
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

    Its metrics port is bound before the worker starts or joins the group, and held:
    a taken port fails at once. The log says where it serves
    (http://METRICS_HOST:METRICS_PROCESSOR_PORT/metrics; port 0: any free port).
    """
    from moisson import stopping

    stopping.on_stop_signals()  # until faust's worker takes the signals over
    s = settings_from(kafka=kafka, partitions=partitions, topic_prefix=topic_prefix)
    s = s.replace(processor={"app_id": app_id}, metrics={"processor_port": metrics_port})
    load_rules_or_fail(s.processor.rules_path)
    from faust.cli.faust import cli as faust_cli

    from moisson.ops.pipeline import worker_args
    from processors.worker import build

    # Binds the metrics port: one of two workers racing for it fails here (a MetricsError,
    # which the moisson group shows).
    app = build(s)
    faust_cli.main(args=worker_args(s, loglevel), app=app, prog_name="moisson process")
