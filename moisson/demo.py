"""`moisson demo`: a short pipeline end to end, then the top and bottom doubles.

(The classroom demo with a dashboard comes later; this proves the whole path.)
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from moisson.settings import Settings
from schemas.kinds import SENSOR_KINDS


@contextlib.contextmanager
def services(settings: Settings, broker: str, workdir: Path, console: Console) -> Iterator[None]:
    """Start local Kafka and PostgreSQL unless the settings point at running ones."""
    from moisson.stack import EmbeddedPostgres, ServiceError, choose_broker

    started: list[Any] = []
    try:
        if not settings.kafka_given:
            k, why = choose_broker(
                broker, workdir / "kafka", settings.stack.kafka_version, settings.stack.cache_dir
            )
            with console.status(f"starting Kafka ({why})…"):
                settings.kafka.bootstrap_servers = k.start()
            started.append(k)
            console.print(f"[green]✓[/] {k.describe()} in {k.start_seconds:.1f}s", soft_wrap=True)
        if not settings.database_given:
            pg = EmbeddedPostgres(workdir / "postgres")
            with console.status("starting PostgreSQL…"):
                from pydantic import SecretStr

                settings.database.url = SecretStr(pg.start())
            started.append(pg)
            console.print(f"[green]✓[/] {pg.describe()} in {pg.start_seconds:.1f}s", soft_wrap=True)
        yield
    except ServiceError as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        for svc in reversed(started):
            svc.stop()


def run_demo(
    *,
    citizens: int,
    days: int | None,
    seed: int,
    speed: float,
    scenario: str | None,
    host: str,
    port: int,
    broker: str,
    timeout: float,
    exit_when_done: bool,
    console: Console,
    out: Console,
    fail: Callable[..., None],
    pseudonymise: bool = False,
    harvest: tuple[str, ...] = (),
) -> None:
    """The classroom demo: a city lives, the harvester scores it, the dashboard shows it."""
    from rich.live import Live
    from rich.table import Table

    from moisson.cli import citizen_panel, tmpdir
    from moisson.ops import pipeline
    from moisson.stack.base import port_open
    from producers.city import City
    from producers.publisher import KafkaSanctions, Pacer, Publisher, ensure_topics
    from producers.scenarios import SCENARIOS
    from sinks.postgres.reader import PostgresReader
    from sinks.postgres.writer import PostgresSink

    if port_open(host, port):
        fail(f"port {port} on {host} is taken", "pass --port with a free one (or DEMO_PORT)")
    settings = Settings()
    run = uuid.uuid4().hex[:8]
    settings.topics.prefix = f"demo-{run}."
    settings.processor.app_id = f"moisson-demo-{run}"
    settings.database.schema_name = f"demo_{run}"
    workdir = tmpdir("moisson-demo-")
    settings.processor.data_dir = workdir / "faust"
    settings.processor.harvest_kinds = ",".join(harvest)
    if pseudonymise:
        import secrets

        from pydantic import SecretStr

        settings.processor.pseudonymise_key = SecretStr(secrets.token_hex(16))
    privacy = _privacy(settings)
    story = SCENARIOS[scenario] if scenario else None
    days = days or (story.days if story else 2)
    command_started = time.time()
    children: list[Any] = []
    with services(settings, broker, workdir, console):
        ensure_topics(settings)
        city = City(seed, citizens, scenario=scenario)
        writer = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
        writer.register(city.people)
        writer.close()
        pg = PostgresReader(settings.database.sqlalchemy_url(), settings.database.schema_name)
        listener = KafkaSanctions(settings).start()
        try:
            with console.status(
                "starting the harvester (faust worker), the sink and the dashboard…"
            ):
                worker, joined = pipeline.start_worker_ready(settings, workdir / "worker.log")
                children.append(worker)
                children.append(pipeline.start_sink(settings, workdir / "sink.log"))
                follow = [f"--follow={k}={privacy.pseudonym(c.id)}" for k, c in city.cast.items()]
                children.append(
                    pipeline.spawn(
                        [
                            sys.executable,
                            "-m",
                            "moisson",
                            "dashboard",
                            "--host",
                            host,
                            "--port",
                            str(port),
                            *follow,
                        ],
                        settings,
                        workdir / "dashboard.log",
                    )
                )
                pipeline.wait_for(
                    lambda: port_open(host, port),
                    bool,
                    30,
                    alive=lambda: (
                        None
                        if children[-1].poll() is None
                        else f"the dashboard exited; see {workdir / 'dashboard.log'}"
                    ),
                )
            url = f"http://{host}:{port}/"
            console.print(
                f"topics {settings.topics.prefix}*, database schema "
                f"{settings.database.schema_name}, logs in {workdir}",
                soft_wrap=True,
            )
            console.print(f"[green]✓[/] harvester ready in {joined:.1f}s")
            console.print(
                f"[bold]dashboard:[/] {url}"
                + (
                    f"  (follow {city.cast['lulu'].name}: {url}#/citizen/{city.cast['lulu'].id})"
                    if "lulu" in city.cast
                    else ""
                ),
                soft_wrap=True,
            )
            console.print(
                f"{len(city.people)} citizens live {days} simulated day(s) at "
                f"{speed:g}× real time"
                + (f", among them {story.title}" if story else "")
                + "; Ctrl-C stops everything"
            )
            published: list[Any] = []

            started = time.monotonic()
            counts: dict[str, int] = {}

            def summary() -> Table:
                t = Table(title="harvest", expand=False)
                for col in ("sensor", "events", "ev/s"):
                    t.add_column(col, justify="right")
                took = max(time.monotonic() - started, 1e-6)
                for kind in SENSOR_KINDS:
                    n = counts.get(kind, 0)
                    t.add_row(kind, f"{n:,}", f"{n / took:,.0f}")
                t.caption = (
                    f"{len({e.citizen_id for e in published[-5000:]}):,}+ citizens "
                    f"seen · {len(listener.blacklisted)} blacklisted"
                )
                return t

            publisher = Publisher(settings)
            with Live(summary(), console=console, refresh_per_second=4) as live:

                def progress(_: int) -> None:
                    for e in published[len(published) - _ :]:
                        counts[e.kind] = counts.get(e.kind, 0) + 1
                    live.update(summary())

                publisher.publish(city.events(days, listener), progress, Pacer(speed, 0), published)
                live.update(summary())
            publisher.close()
            expected = _oracle(published, privacy)
            with console.status("waiting for the doubles to reach PostgreSQL…"):
                pipeline.wait_for(
                    lambda: sum(int(p["version"]) for p in pg.profiles().values()),
                    lambda n: n >= sum(d["version"] for d in expected.values()),
                    timeout,
                    alive=lambda: next(
                        (
                            f"a child exited; see {workdir}"
                            for c in children
                            if c.poll() is not None
                        ),
                        None,
                    ),
                )
            profiles = pg.profiles()
            exact = all(profiles[c]["score"] == d["score"] for c, d in expected.items())
            console.print(
                f"[green]✓[/] {len(published):,} events folded into {len(profiles):,} doubles"
            )
            console.print(
                "[green]✓[/] every score equals the offline oracle's"
                if exact
                else "[red]✗[/] some scores differ from the offline oracle's"
            )
            denied = sum(1 for e in published if e.record.get("outcome") in ("DENIED", "REFUSED"))
            listed = sorted(
                (p for p in profiles.values() if p["blacklisted"]), key=lambda p: p["score"]
            )
            out.print(
                f"{len(listed)} citizen(s) on the blacklist; gates and terminals refused "
                f"them {denied} time(s)."
            )
            if harvest or pseudonymise:
                entries = sum(len(d["ledger"]) for d in expected.values())
                out.print(
                    f"ethics toggles: harvesting {', '.join(harvest) or 'every sensor'}; "
                    f"ids {'pseudonymised' if pseudonymise else 'real'}: the harvester "
                    f"holds {entries:,} ledger entries about {len(expected):,} "
                    f"{'pseudonyms' if pseudonymise else 'people'}."
                )
            focus = city.cast.get("lulu")
            shown = (
                privacy.pseudonym(focus.id)
                if focus
                else (listed[0]["citizen_id"] if listed else None)
            )
            if shown and shown in profiles:
                out.print(
                    citizen_panel(profiles[shown], pg.ledger(shown)[-8:], pg.blacklist_rows(shown))
                )
            first = _first_event_seconds(host, port, command_started)
            if first is not None:
                console.print(f"first event on the dashboard {first:.1f}s after the command")
            if not exit_when_done:
                console.print(
                    f"[bold]the dashboard stays up at {url} — Ctrl-C to stop[/]", soft_wrap=True
                )
                while all(c.poll() is None for c in children):
                    time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("stopping…")
        except (TimeoutError, RuntimeError) as exc:
            fail(str(exc), f"look at the logs in {workdir}")
        finally:
            listener.stop()
            for child in reversed(children):
                pipeline.stop(child)
            pg.close()
    console.print("[green]✓[/] stopped: no process left behind")


def _first_event_seconds(host: str, port: int, since: float) -> float | None:
    """When the dashboard saw its first event, in seconds after the command started."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/overview", timeout=5) as r:
            at = json.load(r).get("first_event_at")
    except OSError:
        return None
    return None if at is None else at - since


def _privacy(settings: Settings) -> Any:
    from processors.privacy import Privacy

    key = settings.processor.pseudonymise_key
    return Privacy.of(
        settings.processor.harvest_kinds,
        key.get_secret_value() if key else None,
    )


def _oracle(published: list[Any], privacy: Any) -> dict[str, Any]:
    """What the pipeline must end with: the oracle, under the same ethics toggles."""
    from processors.oracle import Oracle

    return Oracle(privacy=privacy).observe_all(published)
