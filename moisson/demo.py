"""`moisson demo`: a city lives, the harvester scores it, the dashboard shows it.

:func:`run` does the work and returns a :class:`DemoReport`; what it has to say on the
way goes through a :class:`DemoView` (the CLI renders both with rich), so this module
prints nothing and imports no part of the CLI.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from moisson.errors import MoissonError
from moisson.settings import Settings


class DemoError(MoissonError):
    """The demo cannot go on: what went wrong, and what to do about it."""


@dataclass(frozen=True)
class DemoOptions:
    """What the instructor chose (the CLI's flags)."""

    citizens: int = 300
    days: int | None = None
    seed: int = 42
    speed: float = 7200.0
    scenario: str | None = "lulu"
    host: str = "127.0.0.1"
    port: int = 8350
    broker: Literal["auto", "apache", "embedded"] = "embedded"
    timeout: float = 180.0
    exit_when_done: bool = False
    pseudonymise: bool = False
    harvest: tuple[str, ...] = ()


@dataclass
class LiveCounts:
    """The harvest so far, as the live table shows it."""

    counts: dict[str, int]
    seconds: float
    citizens_seen: int
    blacklisted: int


@dataclass
class DemoReport:
    """What the demo found once the city's days were folded."""

    url: str
    workdir: Path
    events: int = 0
    doubles: int = 0
    exact: bool = False
    blacklisted: int = 0
    denied: int = 0
    #: The ethics toggles in force and what the harvester still holds; None without any.
    ethics: str | None = None
    #: The citizen shown at the end: (profile, last ledger entries, blacklist periods).
    shown: tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]] | None = None
    first_event_s: float | None = None
    #: The dashboard stays up after the report, until Ctrl-C.
    stays_up: bool = False
    stopped_early: bool = False


class DemoView(Protocol):
    """Where the demo says what it is doing (the CLI's console)."""

    def say(self, line: str) -> None:
        """One line of progress."""

    def status(self, line: str) -> contextlib.AbstractContextManager[Any]:
        """A line shown while a slow step runs."""

    def harvesting(self) -> contextlib.AbstractContextManager[Callable[[LiveCounts], None]]:
        """While events are published: a callback that shows the harvest so far."""

    def report(self, report: DemoReport) -> None:
        """The results, shown before the dashboard is left up."""


def run(settings: Settings, opts: DemoOptions, view: DemoView) -> DemoReport:
    """The classroom demo on ``settings``'s services (or local ones it starts).

    Raises :class:`DemoError` when it cannot run; stops every process it started.
    """
    from moisson.stack import ServiceError
    from moisson.stack.base import port_open
    from moisson.stack.provision import isolated, provide

    if port_open(opts.host, opts.port):
        raise DemoError(
            f"port {opts.port} on {opts.host} is taken",
            "pass --port with a free one (or DEMO_PORT)",
        )
    workdir = Path(tempfile.mkdtemp(prefix="moisson-demo-"))
    processor: dict[str, Any] = {
        "data_dir": workdir / "faust",
        "harvest_kinds": ",".join(opts.harvest),
    }
    if opts.pseudonymise:
        import secrets

        from pydantic import SecretStr

        processor["pseudonymise_key"] = SecretStr(secrets.token_hex(16))
    settings = isolated(settings, "demo").replace(
        stack={"broker": opts.broker}, processor=processor
    )
    report = DemoReport(
        url=f"http://{opts.host}:{opts.port}/", workdir=workdir, stays_up=not opts.exit_when_done
    )
    try:
        with provide(settings, workdir, say=view.say) as settings:
            _harvest(settings, opts, view, report)
    except ServiceError as exc:
        raise DemoError(str(exc)) from None
    except KeyboardInterrupt:  # Ctrl-C or a stop signal while the services started
        report.stopped_early = True
    return report


def _harvest(settings: Settings, opts: DemoOptions, view: DemoView, report: DemoReport) -> None:
    from moisson.ops import pipeline
    from producers.city import City
    from producers.publisher import KafkaSanctions, ensure_topics
    from sinks.postgres.reader import PostgresReader
    from sinks.postgres.writer import PostgresSink

    command_started = time.time()
    privacy = _privacy(settings)
    ensure_topics(settings)
    city = City(opts.seed, opts.citizens, scenario=opts.scenario)
    url, schema = settings.database.sqlalchemy_url(), settings.database.schema_name
    writer = PostgresSink(url, schema)
    writer.register(city.people)
    writer.close()
    pg = PostgresReader(url, schema)
    listener = KafkaSanctions(settings).start()
    children: list[Any] = []
    try:
        with view.status("starting the harvester (faust worker), the sink and the dashboard…"):
            joined = _start_children(settings, opts, city, privacy, report.workdir, children)
        view.say(
            f"topics {settings.topics.prefix}*, database schema {schema}, logs in {report.workdir}"
        )
        view.say(f"✓ harvester ready in {joined:.1f}s")
        lulu = city.cast.get("lulu")
        view.say(
            f"dashboard: {report.url}"
            + (f"  (follow {lulu.name}: {report.url}#/citizen/{lulu.id})" if lulu else "")
        )
        published = _publish(settings, opts, city, listener, view)
        expected = _oracle(published, privacy)
        with view.status("waiting for the doubles to reach PostgreSQL…"):
            pipeline.wait_for(
                lambda: sum(int(p["version"]) for p in pg.profiles().values()),
                lambda n: n >= sum(d["version"] for d in expected.values()),
                opts.timeout,
                alive=lambda: next(
                    (
                        f"a child exited; see {report.workdir}"
                        for c in children
                        if c.poll() is not None
                    ),
                    None,
                ),
            )
        _fill(report, pg, published, expected, opts, privacy.pseudonym, city)
        report.first_event_s = _first_event_seconds(opts.host, opts.port, command_started)
        view.report(report)
        if not opts.exit_when_done:
            while all(c.poll() is None for c in children):
                time.sleep(0.5)
    except KeyboardInterrupt:
        report.stopped_early = True
    except (TimeoutError, RuntimeError) as exc:
        raise DemoError(str(exc), f"look at the logs in {report.workdir}") from None
    finally:
        listener.stop()
        pipeline.stop_all(children)  # together, while Kafka and PostgreSQL still run
        pg.close()


def _start_children(
    settings: Settings,
    opts: DemoOptions,
    city: Any,
    privacy: Any,
    workdir: Path,
    children: list[Any],
) -> float:
    """The worker, the sink and the dashboard, each in its own process; how long the
    worker took to be ready."""
    from moisson.ops import pipeline
    from moisson.stack.base import port_open

    worker, joined = pipeline.start_worker_ready(settings, workdir / "worker.log")
    children.append(worker)
    children.append(pipeline.start_sink(settings, workdir / "sink.log"))
    follow = [f"--follow={k}={privacy.pseudonym(c.id)}" for k, c in city.cast.items()]
    dashboard = [sys.executable, "-m", "moisson", "dashboard", "--host", opts.host]
    children.append(
        pipeline.spawn(
            [*dashboard, "--port", str(opts.port), *follow],
            settings,
            workdir / "dashboard.log",
        )
    )
    pipeline.wait_for(
        lambda: port_open(opts.host, opts.port),
        bool,
        30,
        alive=lambda: (
            None
            if children[-1].poll() is None
            else f"the dashboard exited; see {workdir / 'dashboard.log'}"
        ),
    )
    return joined


def _publish(
    settings: Settings, opts: DemoOptions, city: Any, listener: Any, view: DemoView
) -> list[Any]:
    """Live the city's days at the chosen speed; every event published, in order."""
    from moisson.resolvers import registry_client
    from producers.publisher import Pacer, Publisher
    from producers.scenarios import SCENARIOS

    story = SCENARIOS[opts.scenario] if opts.scenario else None
    days = opts.days or (story.days if story else 2)
    view.say(
        f"{len(city.people)} citizens live {days} simulated day(s) at {opts.speed:g}× real time"
        + (f", among them {story.title}" if story else "")
        + "; Ctrl-C stops everything"
    )
    published: list[Any] = []
    counts: dict[str, int] = {}
    started = time.monotonic()

    def tally() -> LiveCounts:
        return LiveCounts(
            dict(counts),
            time.monotonic() - started,
            len({e.citizen_id for e in published[-5000:]}),
            len(listener.blacklisted),
        )

    publisher = Publisher(settings, registry=registry_client(settings))
    try:
        with view.harvesting() as show:

            def progress(n: int) -> None:
                for e in published[len(published) - n :]:
                    counts[e.kind] = counts.get(e.kind, 0) + 1
                show(tally())

            publisher.publish(
                city.events(days, listener), progress, Pacer(opts.speed, 0), published
            )
            show(tally())
    finally:
        publisher.close()
    return published


def _fill(
    report: DemoReport,
    pg: Any,
    published: list[Any],
    expected: dict[str, Any],
    opts: DemoOptions,
    pseudonym: Callable[[str], str],
    city: Any,
) -> None:
    """The report's figures: PostgreSQL against the oracle, refusals, the shown file."""
    profiles = pg.profiles()
    report.events, report.doubles = len(published), len(profiles)
    report.exact = all(profiles[c]["score"] == d["score"] for c, d in expected.items())
    report.denied = sum(1 for e in published if e.record.get("outcome") in ("DENIED", "REFUSED"))
    listed = sorted((p for p in profiles.values() if p["blacklisted"]), key=lambda p: p["score"])
    report.blacklisted = len(listed)
    if opts.harvest or opts.pseudonymise:
        entries = sum(len(d["ledger"]) for d in expected.values())
        who = "pseudonyms" if opts.pseudonymise else "people"
        report.ethics = (
            f"ethics toggles: harvesting {', '.join(opts.harvest) or 'every sensor'}; "
            f"ids {'pseudonymised' if opts.pseudonymise else 'real'}: the harvester "
            f"holds {entries:,} ledger entries about {len(expected):,} {who}."
        )
    focus = city.cast.get("lulu")
    shown = pseudonym(focus.id) if focus else (listed[0]["citizen_id"] if listed else None)
    if shown and shown in profiles:
        report.shown = (profiles[shown], pg.ledger(shown)[-8:], pg.blacklist_rows(shown))


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
    from processors.core.privacy import Privacy

    key = settings.processor.pseudonymise_key
    return Privacy.of(settings.processor.harvest_kinds, key.get_secret_value() if key else None)


def _oracle(published: list[Any], privacy: Any) -> dict[str, Any]:
    """What the pipeline must end with: the oracle, under the same ethics toggles."""
    from processors.core.oracle import Oracle

    return Oracle(privacy=privacy).observe_all(published)
