"""``moisson replay``: send a recording back to Kafka."""

from __future__ import annotations

from pathlib import Path

import click

from moisson.cli.base import (
    console,
    fail,
    kafka_unreachable,
    open_or_fail,
    out,
    parse_speed,
    parse_time,
    progress_bar,
    settings_from,
)
from moisson.cli.params import (
    kafka_option,
    option,
    prefix_option,
    speed_option,
)
from moisson.panels import shown
from schemas.kinds import SENSOR_KINDS


@click.command()
@click.argument("recording", type=click.Path(path_type=Path, exists=True, file_okay=False))
@kafka_option
@prefix_option
@option(
    "--partitions",
    envvar="KAFKA_PARTITIONS",
    type=click.IntRange(min=1),
    default=None,
    help="Partitions of topics replay creates (default: as recorded). A different count "
    "re-partitions by key.",
)
@speed_option("REPLAY_SPEED", "max", "1: original timing; 10: ten times faster; max: no waiting.")
@click.option(
    "--shift-to-now",
    is_flag=True,
    help="Shift Kafka timestamps so the first message is now (event bodies keep "
    "their recorded times, so verify still holds).",
)
@option(
    "--citizen",
    "citizens",
    envvar="REPLAY_CITIZENS",
    multiple=True,
    help="Only these citizens (repeat).",
)
@option(
    "--sensor",
    "sensors_",
    envvar="REPLAY_SENSORS",
    multiple=True,
    type=click.Choice(SENSOR_KINDS),
    help="Only these sensor kinds (repeat).",
)
@option(
    "--from", "from_", envvar="REPLAY_FROM", default=None, help="Skip messages before this time."
)
@option("--to", envvar="REPLAY_TO", default=None, help="Skip messages after this time.")
@option(
    "--loop",
    envvar="REPLAY_LOOP",
    type=click.IntRange(min=1),
    default=1,
    help="Replay N times (the processor's dedupe makes repeats no-ops).",
)
@option(
    "--topic-map",
    envvar="REPLAY_TOPIC_MAP",
    multiple=True,
    metavar="OLD=NEW",
    help="Send the recorded topic OLD to TOPICS_PREFIX + NEW (repeat). A topic that is "
    "not a sensor's (a recorded sanctions or doubles) is sent only where this says; "
    "without it, replay refuses the recording.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would be sent and where; send nothing (no Kafka needed).",
)
def replay(
    recording: Path,
    kafka: str,
    topic_prefix: str,
    partitions: int | None,
    speed: str,
    shift_to_now: bool,
    citizens: tuple[str, ...],
    sensors_: tuple[str, ...],
    from_: str | None,
    to: str | None,
    loop: int,
    topic_map: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Publish a recording in recorded timestamp order, gaps divided by --speed.

    \b
    A recording is untrusted input, checked whole before anything is sent: its files
    must be regular files inside its directory, read with capped decompression; a
    sensor topic goes to the sensor topic of its kind under TOPICS_PREFIX, any other
    topic only where --topic-map says; a manifest may declare at most 64 partitions.
    A refusal is one error line with its fix, and nothing is sent.

    \b
    Examples:
      moisson replay tests/golden/recording --speed max
      moisson replay rec/ --dry-run --sensor metro
      moisson replay rec/ --topic-map sanctions=replayed.sanctions
    """
    from kafka.errors import KafkaError
    from rich.markup import escape

    from moisson import preflight, stopping
    from moisson.ops import replay as rp

    stopping.on_stop_signals()
    rec = open_or_fail(recording)
    recorded = {t: m["partitions"] for t, m in rec.topics.items()}
    s = settings_from(
        kafka=kafka,
        topic_prefix=topic_prefix,
        partitions=partitions or max(recorded.values(), default=1),
        offline=True,  # refusals and --dry-run come before any contact with Kafka
    )
    mapping = {}
    for item in topic_map:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            fail(
                escape(f"--topic-map {item!r} is not OLD=NEW"),
                "e.g. --topic-map sanctions=old.sanctions",
            )
        mapping[old] = new
    try:
        plan = rp.plan_replay(
            rec,
            s,
            citizens=citizens,
            sensors=sensors_,
            from_ms=parse_time(from_),
            to_ms=parse_time(to),
            topic_map=mapping,
        )
    except rp.Refused as exc:
        fail(escape(str(exc)), escape(exc.fix))
    pace = parse_speed(speed)
    if dry_run:
        for at, m, dest, ts in rp.schedule(plan, pace, loop, shift_to_now):
            line = f"+{at:9.3f}s {dest}[{m.partition}] key={m.key!r} ts={ts}"
            out.print(shown(f"{line} {len(m.value or b'')} bytes"), highlight=False)
        console.print(
            f"dry run: {len(plan.items) * loop:,} messages would be sent "
            f"({plan.skipped:,} filtered out)"
        )
        return
    preflight.kafka(s.kafka)  # a PreflightError: the moisson group shows it
    try:
        with progress_bar() as bar:
            task = bar.add_task("replaying", total=len(plan.items) * loop, rate="")
            summary = rp.replay(
                plan,
                s,
                speed=pace,
                loops=loop,
                shift_to_now=shift_to_now,
                recorded_partitions=recorded,
                progress=lambda n: bar.update(task, advance=n),
            )
    except KafkaError as exc:
        kafka_unreachable(s, exc)
    for dest, n in sorted(summary.per_topic.items()):
        note = " (re-partitioned by key)" if dest in summary.repartitioned else ""
        console.print(shown(f"  {dest}: {n:,}{note}"))
    if summary.stopped:
        console.print(f"stopped: {summary.sent:,} of {len(plan.items) * loop:,} messages sent")
        return
    console.print(
        f"[green]✓[/] replayed {summary.sent:,} messages in {summary.seconds:.1f}s "
        f"({plan.skipped:,} filtered out)"
    )
