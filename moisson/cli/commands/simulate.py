"""``moisson simulate``: write a seeded city as a recording, without Kafka."""

from __future__ import annotations

import time
from pathlib import Path

import click

from moisson.cli.base import (
    console,
    fail,
    progress_bar,
    settings_from,
    summary_table,
)
from moisson.cli.params import (
    citizens_option,
    days_option,
    option,
    partitions_option,
    prefix_option,
    seed_option,
)
from schemas.kinds import SENSOR_KINDS


@click.command()
@option(
    "--out",
    envvar="RECORD_OUT",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory to write the recording into (must not hold one already).",
)
@citizens_option
@seed_option
@days_option(1, "Simulated days.")
@partitions_option
@prefix_option
def simulate(
    out: Path, citizens: int, seed: int, days: int, partitions: int, topic_prefix: str
) -> None:
    """Write a recording straight from the simulation, with no Kafka.

    Byte-identical for the same arguments. The sensors obey the blacklist as the pure
    fold computes it, so the recording is what a live run would publish if every
    sanction arrived at once. Replay it with `moisson replay`, check with `moisson verify`.
    """
    from moisson.ops.recording import RecordingError, write_simulation
    from processors.core.oracle import Oracle
    from producers.city import generate_events

    s = settings_from(partitions=partitions, topic_prefix=topic_prefix)
    events = generate_events(seed, citizens, days=days, sanctions=Oracle())
    extra = {"seed": seed, "citizens": citizens, "days": days}
    started = time.monotonic()
    try:
        with progress_bar() as bar:
            task = bar.add_task("simulating", total=None, rate="")
            manifest = write_simulation(
                out,
                events,
                partitions,
                extra,
                {k: s.topics.sensor(k) for k in SENSOR_KINDS},
                progress=lambda n: bar.update(task, advance=n),
            )
    except RecordingError as exc:
        fail(str(exc))
    console.print(summary_table(manifest))
    console.print(
        f"[green]✓[/] {manifest['count']:,} events in {time.monotonic() - started:.1f}s → {out}"
    )
