"""``moisson record``: record live topics into a recording."""

from __future__ import annotations

from pathlib import Path

import click

from moisson.cli.base import (
    console,
    fail,
    parse_time,
    progress_bar,
    settings_from,
    summary_table,
)
from moisson.cli.params import (
    kafka_option,
    option,
    prefix_option,
)


@click.command()
@kafka_option
@prefix_option
@option(
    "--out",
    envvar="RECORD_OUT",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory to write the recording into.",
)
@option(
    "--topics",
    envvar="RECORD_TOPICS",
    default=None,
    help="Comma-separated topics (default: the four sensor topics).",
)
@option(
    "--from",
    "from_",
    envvar="RECORD_FROM",
    default=None,
    help="Start at this time (ISO 8601 or epoch ms); default: the beginning.",
)
@option("--to", envvar="RECORD_TO", default=None, help="Stop after this time.")
@option(
    "--until-idle",
    envvar="RECORD_UNTIL_IDLE",
    type=float,
    default=None,
    help="Stop after this many seconds without a message (default: run until Ctrl-C).",
)
def record(
    kafka: str,
    topic_prefix: str,
    out: Path,
    topics: str | None,
    from_: str | None,
    to: str | None,
    until_idle: float | None,
) -> None:
    """Record Kafka topics into self-contained Avro files plus a manifest.

    Ctrl-C (or SIGTERM, SIGHUP) stops cleanly: the files are closed and the manifest
    written.
    """
    from kafka.errors import KafkaError

    from moisson import stopping
    from moisson.ops import replay as rp
    from moisson.ops.recording import RecordingError

    stop = stopping.on_stop_signals()
    s = settings_from(kafka=kafka, topic_prefix=topic_prefix)
    names = [t.strip() for t in topics.split(",")] if topics else s.topics.sensors
    hint = f"until {until_idle:g}s idle" if until_idle else "Ctrl-C to stop"
    try:
        with progress_bar() as bar, stop.polled():
            task = bar.add_task(f"recording ({hint})", total=None, rate="")
            manifest = rp.record(
                s,
                out,
                names,
                from_ms=parse_time(from_),
                to_ms=parse_time(to),
                until_idle=until_idle,
                should_stop=stop,
                progress=lambda n: bar.update(task, advance=n),
            )
    except (KafkaError, ValueError, RecordingError) as exc:
        fail(str(exc), "check --kafka and --topics")
    console.print(summary_table(manifest))
    console.print(f"[green]✓[/] recorded {manifest['count']:,} messages → {out}")
