"""``moisson demo``: the classroom demo, rendered."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import click
from rich.table import Table

from moisson.cli.base import (
    console,
    out,
    parse_speed,
)
from moisson.cli.params import (
    crowd_option,
    days_option,
    local_broker_option,
    option,
    scenario_option,
    seed_option,
    speed_option,
    timeout_option,
)
from moisson.demo import DemoReport, LiveCounts
from moisson.panels import citizen_panel
from moisson.settings import Settings
from schemas.kinds import SENSOR_KINDS


@click.command()
@crowd_option
@days_option(None, "Simulated days (default: the scenario's, 7 for Lulu's week; else 2).")
@seed_option
@speed_option(
    "SENSORS_SPEED",
    "7200",
    "Simulated seconds per real second: 7200 lives a week in 84 s; 'max' for no pacing.",
)
@scenario_option
@option("--host", envvar="DEMO_HOST", default="127.0.0.1", help="Where the dashboard listens.")
@option(
    "--port",
    envvar="DEMO_PORT",
    type=click.IntRange(1, 65535),
    default=8350,
    help="Dashboard port.",
)
@local_broker_option
@timeout_option("DEMO_TIMEOUT", 180.0, "Seconds to wait for the pipeline to catch up.")
@click.option(
    "--pseudonymise",
    is_flag=True,
    envvar="DEMO_PSEUDONYMISE",
    show_envvar=True,
    help="Ethics toggle: hash citizen ids before scoring (gates then cannot match sanctions).",
)
@option(
    "--harvest",
    "harvest",
    envvar="DEMO_HARVEST",
    multiple=True,
    type=click.Choice(SENSOR_KINDS),
    help="Ethics toggle (minimisation): harvest only these sensor kinds (repeat).",
)
@click.option(
    "--exit-when-done",
    is_flag=True,
    envvar="DEMO_EXIT_WHEN_DONE",
    show_envvar=True,
    help="Stop once the simulation is folded (default: keep the dashboard up until Ctrl-C).",
)
def demo(
    citizens: int,
    days: int | None,
    seed: int,
    speed: str,
    scenario: str,
    host: str,
    port: int,
    broker: Literal["auto", "apache", "embedded"],
    timeout: float,
    pseudonymise: bool,
    harvest: tuple[str, ...],
    exit_when_done: bool,
) -> None:
    """The classroom demo: a city lives, the harvester scores it, gates close.

    \b
    Starts everything on this machine (no Docker, no JVM): the embedded Kafka-compatible
    broker, PostgreSQL, the sensors, a faust worker, the sink and a dashboard at
    http://127.0.0.1:8350/. With KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL set, it uses those
    services instead and starts none. Ctrl-C (or SIGTERM, SIGHUP) stops everything
    cleanly; whatever it started dies with it, even on kill -9.
    """
    from moisson import stopping
    from moisson.demo import DemoOptions, run

    stopping.on_stop_signals()
    stopping.tie_children()

    opts = DemoOptions(
        citizens=citizens,
        days=days,
        seed=seed,
        speed=parse_speed(speed),
        scenario=None if scenario == "none" else scenario,
        host=host,
        port=port,
        broker=broker,
        timeout=timeout,
        exit_when_done=exit_when_done,
        pseudonymise=pseudonymise,
        harvest=harvest,
    )
    report = run(Settings(), opts, RichView())  # a DemoError: the moisson group shows it
    if report.stopped_early:
        console.print("stopping…")
    console.print("[green]✓[/] stopped: no process left behind")


class RichView:
    """The demo on the terminal: progress on stderr, the results on stdout."""

    def say(self, line: str) -> None:
        console.print(line, soft_wrap=True, highlight=False)

    def status(self, line: str) -> Any:
        return console.status(line)

    @contextlib.contextmanager
    def harvesting(self) -> Iterator[Callable[[LiveCounts], None]]:
        from rich.live import Live

        with Live(harvest_table(None), console=console, refresh_per_second=4) as live:
            yield lambda h: live.update(harvest_table(h))

    def report(self, report: DemoReport) -> None:
        console.print(
            f"[green]✓[/] {report.events:,} events folded into {report.doubles:,} doubles"
        )
        console.print(
            "[green]✓[/] every score equals the offline oracle's"
            if report.exact
            else "[red]✗[/] some scores differ from the offline oracle's"
        )
        out.print(
            f"{report.blacklisted} citizen(s) on the blacklist; gates and terminals refused "
            f"them {report.denied} time(s)."
        )
        if report.ethics:
            out.print(report.ethics)
        if report.shown:
            out.print(citizen_panel(*report.shown))
        if report.first_event_s is not None:
            console.print(
                f"first event on the dashboard {report.first_event_s:.1f}s after the command"
            )
        if report.stays_up:
            console.print(
                f"[bold]the dashboard stays up at {report.url} — Ctrl-C to stop[/]",
                soft_wrap=True,
            )


def harvest_table(h: LiveCounts | None) -> Table:
    """The live harvest: events and rate per sensor, citizens seen, the blacklist."""
    t = Table(title="harvest", expand=False)
    for col in ("sensor", "events", "ev/s"):
        t.add_column(col, justify="right")
    counts = h.counts if h else {}
    took = max(h.seconds if h else 0.0, 1e-6)
    for kind in SENSOR_KINDS:
        n = counts.get(kind, 0)
        t.add_row(kind, f"{n:,}", f"{n / took:,.0f}")
    if h:
        t.caption = f"{h.citizens_seen:,}+ citizens seen · {h.blacklisted} blacklisted"
    return t
