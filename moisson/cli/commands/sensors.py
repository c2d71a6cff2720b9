"""``moisson sensors``: publish the simulated city's sensor events."""

from __future__ import annotations

import time
from typing import Any

import click

from moisson.cli.base import (
    console,
    fail,
    kafka_unreachable,
    out,
    parse_speed,
    progress_bar,
    serve_metrics,
    settings_from,
)
from moisson.cli.params import (
    DEFAULTS,
    citizens_option,
    days_option,
    kafka_option,
    metrics_port_option,
    option,
    partitions_option,
    prefix_option,
    seed_option,
    speed_option,
)
from moisson.settings import Settings
from schemas.kinds import SENSOR_KINDS


@click.command()
@kafka_option
@partitions_option
@prefix_option
@seed_option
@citizens_option
@days_option(None, "Simulated days to run (default: 1, or until --count).")
@option(
    "--count",
    envvar="SENSORS_COUNT",
    type=click.IntRange(min=0),
    default=None,
    help="Stop after this many events.",
)
@option(
    "--kind",
    "kinds",
    envvar="SENSORS_KINDS",
    multiple=True,
    type=click.Choice(SENSOR_KINDS),
    help="Sensor kinds to run (repeat; default all).",
)
@speed_option(
    "SENSORS_SPEED", "max", "Simulated seconds per real second (3600: an hour a second), or 'max'."
)
@option(
    "--rate",
    envvar="SENSORS_RATE",
    type=click.FloatRange(min=0),
    default=0.0,
    help="At most this many events per second (0: no limit).",
)
@option(
    "--sanctions",
    "sanction_source",
    envvar="SENSORS_SANCTIONS",
    type=click.Choice(["kafka", "oracle", "none"]),
    default="kafka",
    help="Whom the sensors obey: the sanctions topic (live), the pure fold run "
    "inline (exactly repeatable), or nobody.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the decoded events instead of publishing (sanctions: oracle).",
)
@metrics_port_option("METRICS_SENSORS_PORT", DEFAULTS.metrics.sensors_port)
def sensors(
    kafka: str,
    partitions: int,
    topic_prefix: str,
    seed: int,
    citizens: int,
    days: int | None,
    count: int | None,
    kinds: tuple[str, ...],
    speed: str,
    rate: float,
    sanction_source: str,
    dry_run: bool,
    metrics_port: int,
) -> None:
    """Publish the simulated city's sensor events (metro, payments, books, cameras).

    \b
    Citizens live their days on a simulated clock: commutes through metro gates,
    meals and shopping at payment terminals, books at bookshop tills, and street
    cameras. Blacklisted citizens are refused at gates and luxury terminals.
    \b
    Examples:
      moisson sensors --citizens 1000 --days 2            # as fast as possible
      moisson sensors --days 1 --speed 3600               # one simulated hour per second
      moisson sensors --count 5 --dry-run                 # look at five events
    """
    from moisson import stopping
    from processors.core.oracle import Oracle
    from producers.city import generate_events

    stopping.on_stop_signals()
    pace = parse_speed(speed)
    if days is None and count is None:
        days = 1
    s = settings_from(
        kafka=kafka, partitions=partitions, topic_prefix=topic_prefix, offline=dry_run
    )
    s = s.replace(metrics={"sensors_port": metrics_port})
    if dry_run:
        for ev in generate_events(seed, citizens, count, kinds or None, days, Oracle()):
            out.print({"kind": ev.kind, **ev.record})
        return
    listener = None
    source: Any = None
    if sanction_source == "oracle":
        source = Oracle()
    elif sanction_source == "none":
        from producers.publisher import Nobody

        source = Nobody()
    events = generate_events(seed, citizens, count, kinds or None, days, source)
    if sanction_source == "kafka":
        from producers.publisher import KafkaSanctions, ensure_topics

        try:
            ensure_topics(s)
        except Exception as exc:  # reported by publish() below with the fix
            kafka_unreachable(s, exc)
        listener = KafkaSanctions(s).start()
        events = generate_events(seed, citizens, count, kinds or None, days, listener)
    try:
        publish(s, events, count, pace, rate)
    finally:
        if listener is not None:
            listener.stop()
            console.print(
                f"sanctions obeyed: {listener.received} received "
                f"({listener.stale} stale ignored), "
                f"{len(listener.blacklisted)} citizens blacklisted now"
            )


def publish(
    s: Settings,
    events: Any,
    count: int | None,
    speed: float = 0.0,
    rate: float = 0.0,
    keep: list[Any] | None = None,
) -> int:
    """Create the topics, then publish ``events`` with a progress bar, serving the
    sensors' metrics meanwhile."""
    from kafka.errors import KafkaError

    from moisson.metrics import SensorMetrics
    from moisson.resolvers import registry_client
    from producers.publisher import Pacer, Publisher, ensure_topics
    from schemas.registry_client import RegistryError

    metrics = SensorMetrics()
    try:
        created = ensure_topics(s)
        publisher = Publisher(s, metrics=metrics, registry=registry_client(s))
    except KafkaError as exc:
        kafka_unreachable(s, exc)
        return 0
    except RegistryError as exc:
        fail(str(exc), "start one (moisson stack up --registry) or unset REGISTRY_URL")
        return 0
    if created:
        console.print(f"created topics: {', '.join(created)}")
    server = serve_metrics(s, metrics.registry, "sensors")
    started = time.monotonic()
    pacer = Pacer(speed, rate) if speed or rate else None
    with progress_bar() as bar:
        task = bar.add_task("publishing", total=count, rate="")

        def advance(n: int) -> None:
            rate = bar.tasks[0].completed / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=n, rate=f"{rate:,.0f} ev/s")

        stopped = False
        try:
            n = publisher.publish(events, advance, pacer, keep)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: what was sent stays sent
            n, stopped = publisher.sent, True
        finally:
            publisher.close()
            if server is not None:
                server.close()
    took = time.monotonic() - started
    if stopped:
        lost = len(publisher.errors)  # those the broker never acknowledged
        console.print(
            f"stopped: {n - lost:,} events published in {took:.1f}s"
            + (f"; {lost:,} sent but not acknowledged (is Kafka up?)" if lost else "")
        )
        return n - lost
    console.print(
        f"[green]✓[/] published {n:,} events in {took:.1f}s ({n / max(took, 1e-6):,.0f} ev/s)"
    )
    return n
