"""``moisson verify``: PostgreSQL and the sanctions against the offline oracle."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from moisson.cli.base import (
    console,
    fail,
    kafka_fix,
    open_or_fail,
    out,
    settings_from,
)
from moisson.cli.params import (
    database_option,
    kafka_option,
    option,
    prefix_option,
    timeout_option,
)
from moisson.ops.read_to_end import IDLE_S
from moisson.panels import shown


@click.command()
@click.argument("recording", type=click.Path(path_type=Path, exists=True, file_okay=False))
@database_option
@kafka_option
@prefix_option
@timeout_option(
    "VERIFY_TIMEOUT",
    120.0,
    "Seconds to wait for the pipeline to catch up (PostgreSQL, then the sanctions "
    "topic) before comparing.",
)
@option(
    "--idle",
    envvar="VERIFY_IDLE",
    type=click.FloatRange(min=0.0),
    default=IDLE_S,
    help="Seconds without a new sanction, past the end offsets the broker reports, "
    "before the sanctions topic counts as read to its end (a broker may report an end "
    "behind its log: docs/tansu-high-watermark.md).",
)
@option(
    "--rules-path",
    envvar="PROCESSOR_RULES_PATH",
    type=click.Path(path_type=Path),
    default=None,
    help="The rules the processor runs with (default: the shipped ones).",
)
def verify(
    recording: Path,
    database_url: str | None,
    kafka: str,
    topic_prefix: str,
    timeout: float,
    idle: float,
    rules_path: Path | None,
) -> None:
    """Check that PostgreSQL and the sanctions topic hold exactly what the oracle
    computes from RECORDING.

    Exits 0 only when every profile, ledger entry and blacklist period is equal, and
    every citizen's sanction in force (the highest double_version, as the sensors
    read it) is active exactly when the oracle's double is blacklisted.
    """
    from kafka.errors import KafkaError
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from moisson.ops import verify as vf
    from moisson.resolvers import id_resolver
    from processors.core.scoring import load_rules
    from processors.core.validation import Rejection
    from sinks.postgres.reader import PostgresReader

    rec = open_or_fail(recording)
    s = settings_from(database_url=database_url, kafka=kafka, topic_prefix=topic_prefix)
    rules = load_rules(rules_path or s.processor.rules_path)
    plan = vf.expected_plan(
        rec,
        rules,
        s.processor.lateness_s,
        s.kafka.partitions,
        id_resolver(s),
        s.processor.check_partition,
    )
    expected = {c: d for c, (d, _) in plan.doubles.items()}
    if late := plan.rejections.get(Rejection.TOO_LATE.value, 0):
        console.print(
            f"{late:,} event(s) arrive later than the allowed lateness behind their "
            "partition's watermark: the processor dead-letters them as too-late, and so "
            "does the oracle"
        )
    deadline = time.monotonic() + timeout
    try:
        pg = PostgresReader(s.database.sqlalchemy_url(), s.database.schema_name)
        with console.status("waiting for the pipeline to catch up…") as status:
            ok = vf.wait_caught_up(
                expected,
                pg,
                timeout,
                lambda d, t: status.update(
                    f"waiting for the pipeline to catch up: {d:,}/{t:,} citizens"
                ),
            )
        diffs = vf.settle(expected, pg, rules, deadline)
        counted = vf.tally(expected, pg.profiles())
    except (OperationalError, ProgrammingError) as exc:
        fail(
            f"cannot read PostgreSQL: {getattr(exc, 'orig', exc)}",
            "set DATABASE_URL (and DATABASE_SCHEMA_NAME) to where the sink writes",
        )
        return
    try:
        with console.status(f"reading {s.topics.sanctions}…") as status:
            last, sanction_diffs = vf.wait_sanctions(
                expected,
                s,
                max(0.0, deadline - time.monotonic()),
                lambda n: status.update(
                    f"waiting for {s.topics.sanctions} to agree: {n:,} difference(s)"
                ),
                idle,
            )
    except KafkaError as exc:
        fail(
            f"cannot read {s.topics.sanctions} from {s.kafka.bootstrap_servers}: {exc}",
            kafka_fix(s),
        )
        return
    if not ok:
        console.print(f"[yellow]the pipeline had not caught up after {timeout:g}s[/]")
    if not diffs:
        console.print(
            f"[green]✓[/] PostgreSQL equals the oracle: {len(expected):,} citizens, "
            f"{sum(d['version'] for d in expected.values()):,} events, "
            f"{sum(len(d['ledger']) for d in expected.values()):,} ledger entries, "
            f"{sum(len(d['blacklist']) for d in expected.values()):,} blacklist periods; "
            "0 events lost, 0 applied twice"
        )
    else:
        out.print(f"{counted.lost:,} event(s) lost, {counted.duplicated:,} applied twice")
        print_diffs(f"{len(diffs)} difference(s)", diffs)
    if not sanction_diffs:
        active = sum(1 for x in last.values() if x["active"])
        console.print(
            f"[green]✓[/] {s.topics.sanctions} agrees with the oracle: "
            f"{active:,} citizen(s) under an active sanction, "
            f"{len(last):,} citizen(s) with a sanction",
            soft_wrap=True,
        )
    else:
        out.print(
            f"{s.topics.sanctions}: the sanction in force (highest double_version) "
            f"disagrees with the oracle's blacklist for {len(sanction_diffs):,} citizen(s)",
            soft_wrap=True,
        )
        print_diffs(f"{len(sanction_diffs)} sanction difference(s)", sanction_diffs)
    if diffs or sanction_diffs:
        sys.exit(1)


def print_diffs(title: str, diffs: list[Any], limit: int = 50) -> None:
    """A table of differences (citizen, field, expected, actual), the first ``limit``."""
    table = Table(title=title)
    for col in ("citizen", "field", "expected", "actual"):
        table.add_column(col, overflow="fold")
    for d in diffs[:limit]:
        table.add_row(*map(shown, (d.citizen, d.field, short(d.expected), short(d.actual))))
    out.print(table)
    if len(diffs) > limit:
        out.print(f"… and {len(diffs) - limit} more")


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
