"""``moisson dlq``: the last dead letters and why."""

from __future__ import annotations

import click
from rich.table import Table

from moisson.cli.base import (
    kafka_unreachable,
    out,
    settings_from,
)
from moisson.cli.params import (
    kafka_option,
    option,
    prefix_option,
)
from moisson.panels import shown


@click.command()
@kafka_option
@prefix_option
@option(
    "--last",
    envvar="DLQ_LAST",
    type=click.IntRange(min=0),
    default=10,
    help="How many of the latest dead letters to show.",
)
@option(
    "--sink",
    envvar="DLQ_SINK",
    is_flag=True,
    default=False,
    help="Read the sink's dead-letter topic (records PostgreSQL would refuse) instead of"
    " the processor's.",
)
def dlq(kafka: str, topic_prefix: str, last: int, sink: bool) -> None:
    """Count what the processor (or, with --sink, the sink) refused, per reason (read from
    the dead-letter topic)."""
    from kafka.errors import KafkaError

    from moisson.ops.dlq import read_dead_letters

    s = settings_from(kafka=kafka, topic_prefix=topic_prefix)
    topic = s.topics.names.sink_dlq if sink else s.topics.dlq
    try:
        letters = read_dead_letters(s, keep=last, topic=topic)
    except KafkaError as exc:
        kafka_unreachable(s, exc)
        return
    out.print(f"{topic}: {letters.total:,} dead letter(s)", soft_wrap=True)
    table = Table(title="per reason")
    table.add_column("reason")
    table.add_column("count", justify="right")
    for reason, n in letters.by_reason.most_common():
        table.add_row(shown(reason), f"{n:,}")
    out.print(table)
    if letters.latest and last:
        latest = Table(title="latest")
        for col in ("reason", "from", "key", "bytes", "detail"):
            latest.add_column(col, overflow="fold")
        for d in letters.latest:
            row = (d["reason"], d["source"], repr(d["key"]), d["bytes"], d["detail"])
            latest.add_row(*map(shown, row))
        out.print(latest)
