"""The ``moisson`` command line. Every flag falls back to an env var shown in ``--help``."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from moisson import __version__
from moisson.settings import Settings
from schemas.kinds import SENSOR_KINDS

if TYPE_CHECKING:
    from processors.scoring import Rulebook

console = Console(stderr=True)
out = Console()

_defaults = Settings.model_construct()  # the documented defaults, not this shell's env


def option(*decls: str, envvar: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A click option that falls back to ``envvar`` and says so in ``--help``."""
    return click.option(*decls, envvar=envvar, show_envvar=True, show_default=True, **kwargs)


kafka_option = option(
    "--kafka",
    "kafka",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    default=_defaults.kafka.bootstrap_servers,
    help="Kafka bootstrap servers (host:port,…).",
)
partitions_option = option(
    "--partitions",
    envvar="KAFKA_PARTITIONS",
    type=click.IntRange(min=1),
    default=_defaults.kafka.partitions,
    help="Partitions of each topic; the processor's table uses the same count.",
)
prefix_option = option(
    "--topic-prefix",
    envvar="TOPICS_PREFIX",
    default=_defaults.topics.prefix,
    help="Prefix of every topic name, to run side by side with another pipeline.",
)
seed_option = option(
    "--seed",
    envvar="SENSORS_SEED",
    type=int,
    default=_defaults.sensors.seed,
    help="Seed of the population and of every event: same seed, same bytes.",
)
citizens_option = option(
    "--citizens",
    envvar="SENSORS_CITIZENS",
    type=click.IntRange(min=1),
    default=_defaults.sensors.citizens,
    help="Size of the simulated population.",
)
database_option = option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    help="SQLAlchemy URL of PostgreSQL (default built from DATABASE_HOST/PORT/USER/PASSWORD/NAME).",
)


def settings_from(**flags: Any) -> Settings:
    """Settings from the environment with the given CLI flags applied, made process-wide.

    A malformed setting, or an unreachable Kafka for a command given ``kafka``, fails
    here with one line.
    """
    from pydantic import ValidationError

    from moisson import preflight
    from moisson.settings import check_database_url

    try:
        s = Settings()
        if flags.get("database_url"):
            check_database_url(flags["database_url"])
    except ValidationError as exc:
        fail(f"bad setting: {preflight.explain(exc)}", "fix the env var (see moisson --help)")
    except ValueError as exc:
        fail(f"--database-url / DATABASE_URL is {exc}")
    if flags.get("kafka"):
        s.kafka.bootstrap_servers = flags["kafka"]
    if flags.get("partitions"):
        s.kafka.partitions = flags["partitions"]
    if flags.get("topic_prefix") is not None:
        s.topics.prefix = flags["topic_prefix"]
    if flags.get("database_url"):
        from pydantic import SecretStr

        s.database.url = SecretStr(flags["database_url"])
    if flags.get("kafka") and not flags.get("offline"):
        try:
            preflight.kafka(s.kafka)
        except preflight.PreflightError as exc:
            fail(str(exc), exc.fix)
    return s


def kafka_fix(s: Settings) -> str:
    """What to check when Kafka refuses us."""
    from moisson.preflight import KAFKA_FIX

    fix = KAFKA_FIX
    if s.kafka.security_protocol.startswith("SASL"):
        fix += "; a broker that drops the connection may refuse KAFKA_SASL_USERNAME/PASSWORD"
    return fix


def fail(message: str, fix: str | None = None) -> NoReturn:
    """One clear line (and the fix), no traceback wall."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    if fix:
        console.print(f"[yellow]fix:[/] {fix}", soft_wrap=True, highlight=False)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="moisson")
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """moisson: harvest a simulated city's everyday life into scored digital doubles.

    \b
    The pipeline:
      moisson sensors   simulated metro gates, tills and cameras publish Avro events to Kafka
      moisson process   a faust worker folds them into one double per citizen
      moisson sink      doubles are upserted into PostgreSQL
    \b
    Try `moisson demo` for all of it at once, or `moisson stack up` to start
    local Kafka and PostgreSQL and print the env vars to reach them.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def load_rules_or_fail(path: Path | None) -> Rulebook:
    """The rules at ``path`` (None: the shipped ones), or one clear error."""
    from processors.scoring import RulesError, load_rules

    try:
        return load_rules(path)
    except RulesError as exc:
        fail(str(exc), "fix the file, or unset PROCESSOR_RULES_PATH to use the shipped rules")


# --- stack -----------------------------------------------------------------


@main.group()
def stack() -> None:
    """Start, stop and describe local Kafka and PostgreSQL (no Docker needed).

    Apache Kafka (fetched from Maven Central, run with java) is used when Java 17+
    and Maven are present; otherwise the embedded Tansu broker. STACK_BROKER forces one.
    """


broker_option = option(
    "--broker",
    envvar="STACK_BROKER",
    type=click.Choice(["auto", "apache", "embedded"]),
    default=_defaults.stack.broker,
    help="Which Kafka to start.",
)
home_option = option(
    "--home",
    envvar="STACK_HOME",
    type=click.Path(path_type=Path),
    default=_defaults.stack.home,
    help="Where the stack keeps its data and state.",
)


@stack.command("up")
@broker_option
@home_option
@option(
    "--registry/--no-registry",
    envvar="STACK_REGISTRY",
    default=False,
    help="Also start Apicurio Registry (Java 21+, ~160 MB from Maven Central once) and"
    " export REGISTRY_URL: the sensors then write the schema registry framing.",
)
def stack_up(broker: str, home: Path, registry: bool) -> None:
    """Start the services in the background and print their env vars.

    Use them with: eval "$(moisson stack env)".
    """
    from moisson.stack import ServiceError, local

    s = Settings()
    s.stack.broker = broker  # type: ignore[assignment]
    s.stack.home = home
    try:
        with console.status("starting local services…"):
            state, messages = local.up(s, registry=registry)
    except ServiceError as exc:
        fail(str(exc), "see `moisson stack --help`; set STACK_BROKER=embedded to skip Java")
    for m in messages:
        console.print(f"[green]✓[/] {m}")
    for k, v in state.env.items():
        out.print(f"export {k}='{v}'", highlight=False, soft_wrap=True)


@stack.command("down")
@home_option
def stack_down(home: Path) -> None:
    """Stop the services `stack up` started."""
    from moisson.stack import local

    s = Settings()
    s.stack.home = home
    stopped = local.down(s)
    for what in stopped:
        console.print(f"[green]✓[/] stopped {what}")
    if not stopped:
        console.print("nothing to stop")


@stack.command("env")
@home_option
def stack_env(home: Path) -> None:
    """Print `export` lines for the running stack."""
    from moisson.stack import local

    state = local.load_state(home.resolve())
    if state is None or not state.alive():
        fail("the local stack is not running", "moisson stack up")
    for k, v in state.env.items():
        out.print(f"export {k}='{v}'", highlight=False, soft_wrap=True)


# --- sensors ---------------------------------------------------------------


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


def parse_speed(value: str | float) -> float:
    """``max`` (or 0) means as fast as possible; otherwise simulated seconds per second."""
    if isinstance(value, int | float):
        return float(value)
    if value.strip().lower() in ("max", "0", ""):
        return 0.0
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither 'max' nor a number") from None
    if speed < 0:
        raise click.BadParameter("the speed cannot be negative")
    return speed


@main.command()
@kafka_option
@partitions_option
@prefix_option
@seed_option
@citizens_option
@option(
    "--days",
    envvar="SENSORS_DAYS",
    type=click.IntRange(min=1),
    default=None,
    help="Simulated days to run (default: 1, or until --count).",
)
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
@option(
    "--speed",
    envvar="SENSORS_SPEED",
    default="max",
    help="Simulated seconds per real second (3600: an hour a second), or 'max'.",
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
    from processors.oracle import Oracle
    from producers.city import generate_events

    pace = parse_speed(speed)
    if days is None and count is None:
        days = 1
    s = settings_from(
        kafka=kafka, partitions=partitions, topic_prefix=topic_prefix, offline=dry_run
    )
    if dry_run:
        for ev in generate_events(seed, citizens, count, kinds or None, days, Oracle()):
            out.print({"kind": ev.kind, **ev.record})
        return
    listener = None
    source: Any = None
    if sanction_source == "oracle":
        source = Oracle()
    elif sanction_source == "none":
        source = _Nobody()
    events = generate_events(seed, citizens, count, kinds or None, days, source)
    if sanction_source == "kafka":
        from producers.publisher import KafkaSanctions, ensure_topics

        try:
            ensure_topics(s)
        except Exception as exc:  # reported by publish() below with the fix
            fail(
                f"cannot reach Kafka at {s.kafka.bootstrap_servers}: {exc}",
                kafka_fix(s),
            )
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


class _Nobody:
    def is_blacklisted(self, citizen_id: str) -> bool:
        return False

    def observe(self, event: Any) -> None:
        pass


def publish(
    s: Settings,
    events: Any,
    count: int | None,
    speed: float = 0.0,
    rate: float = 0.0,
    keep: list[Any] | None = None,
) -> int:
    """Create the topics, then publish ``events`` with a progress bar."""
    from kafka.errors import KafkaError

    from producers.publisher import Pacer, Publisher, ensure_topics
    from schemas.registry import RegistryError

    try:
        created = ensure_topics(s)
        publisher = Publisher(s)
    except KafkaError as exc:
        fail(
            f"cannot reach Kafka at {s.kafka.bootstrap_servers}: {exc}",
            kafka_fix(s),
        )
        return 0
    except RegistryError as exc:
        fail(str(exc), "start one (moisson stack up --registry) or unset REGISTRY_URL")
        return 0
    if created:
        console.print(f"created topics: {', '.join(created)}")
    started = time.monotonic()
    pacer = Pacer(speed, rate) if speed or rate else None
    with progress_bar() as bar:
        task = bar.add_task("publishing", total=count, rate="")

        def advance(n: int) -> None:
            rate = bar.tasks[0].completed / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=n, rate=f"{rate:,.0f} ev/s")

        n = publisher.publish(events, advance, pacer, keep)
    publisher.close()
    took = time.monotonic() - started
    console.print(
        f"[green]✓[/] published {n:,} events in {took:.1f}s ({n / max(took, 1e-6):,.0f} ev/s)"
    )
    return n


# --- record, simulate, replay, verify ---------------------------------------


def parse_time(value: str | None) -> int | None:
    """An ISO 8601 time (UTC unless it says otherwise) or epoch milliseconds."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither ISO 8601 nor epoch milliseconds") from None
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000)


def open_or_fail(directory: Path) -> Any:
    from moisson.ops.recording import RecordingError, open_recording

    try:
        rec = open_recording(directory)
        rec.check()
    except RecordingError as exc:
        fail(str(exc), "nothing was sent; record or simulate it again")
    return rec


def summary_table(manifest: dict[str, Any]) -> Table:
    table = Table(title=f"recording ({manifest['source']}, {manifest['count']:,} messages)")
    for col in ("topic", "partitions", "messages", "sha256"):
        table.add_column(col)
    for topic, t in manifest["topics"].items():
        table.add_row(topic, str(t["partitions"]), f"{t['count']:,}", t["sha256"][:16] + "…")
    return table


@main.command()
@option(
    "--out",
    envvar="RECORD_OUT",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory to write the recording into (must not hold one already).",
)
@citizens_option
@seed_option
@option(
    "--days", envvar="SENSORS_DAYS", type=click.IntRange(min=1), default=1, help="Simulated days."
)
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
    from processors.oracle import Oracle
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


@main.command()
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

    Ctrl-C stops cleanly: the files are closed and the manifest written.
    """
    from kafka.errors import KafkaError

    from moisson.ops import replay as rp
    from moisson.ops.recording import RecordingError

    s = settings_from(kafka=kafka, topic_prefix=topic_prefix)
    names = [t.strip() for t in topics.split(",")] if topics else s.topics.sensors
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    hint = f"until {until_idle:g}s idle" if until_idle else "Ctrl-C to stop"
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"recording ({hint})", total=None, rate="")
            manifest = rp.record(
                s,
                out,
                names,
                from_ms=parse_time(from_),
                to_ms=parse_time(to),
                until_idle=until_idle,
                should_stop=lambda: stopping,
                progress=lambda n: bar.update(task, advance=n),
            )
    except (KafkaError, ValueError, RecordingError) as exc:
        fail(str(exc), "check --kafka and --topics")
    console.print(summary_table(manifest))
    console.print(f"[green]✓[/] recorded {manifest['count']:,} messages → {out}")


@main.command()
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
@option(
    "--speed",
    envvar="REPLAY_SPEED",
    default="max",
    help="1: original timing; 10: ten times faster; max: no waiting.",
)
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
    help="old=new: send a recorded topic elsewhere (repeat).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
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
    """Publish a recording in recorded timestamp order, gaps divided by --speed."""
    from kafka.errors import KafkaError

    from moisson.ops import replay as rp

    rec = open_or_fail(recording)
    recorded = {t: m["partitions"] for t, m in rec.topics.items()}
    s = settings_from(
        kafka=kafka,
        topic_prefix=topic_prefix,
        partitions=partitions or max(recorded.values(), default=1),
    )
    mapping = {}
    for item in topic_map:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            fail(f"--topic-map {item!r} is not old=new")
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
    except ValueError as exc:
        fail(str(exc))
    pace = parse_speed(speed)
    if dry_run:
        for at, m, dest, ts in rp.schedule(plan, pace, loop, shift_to_now):
            out.print(
                f"+{at:9.3f}s {dest}[{m.partition}] key={m.key!r} ts={ts} "
                f"{len(m.value or b'')} bytes",
                highlight=False,
            )
        console.print(
            f"dry run: {len(plan.items) * loop:,} messages would be sent "
            f"({plan.skipped:,} filtered out)"
        )
        return
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
        fail(
            f"cannot reach Kafka at {s.kafka.bootstrap_servers}: {exc}",
            kafka_fix(s),
        )
    for dest, n in sorted(summary.per_topic.items()):
        note = " (re-partitioned by key)" if dest in summary.repartitioned else ""
        console.print(f"  {dest}: {n:,}{note}")
    console.print(
        f"[green]✓[/] replayed {summary.sent:,} messages in {summary.seconds:.1f}s "
        f"({plan.skipped:,} filtered out)"
    )


@main.command()
@click.argument("recording", type=click.Path(path_type=Path, exists=True, file_okay=False))
@database_option
@kafka_option
@prefix_option
@option(
    "--timeout",
    envvar="VERIFY_TIMEOUT",
    type=float,
    default=120.0,
    help="Seconds to wait for the pipeline to catch up (PostgreSQL, then the sanctions "
    "topic) before comparing.",
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
    from moisson.registry import id_resolver
    from processors.harvest import Rejection
    from processors.scoring import load_rules
    from sinks.postgres.reader import PostgresReader

    rec = open_or_fail(recording)
    s = settings_from(database_url=database_url, kafka=kafka, topic_prefix=topic_prefix)
    rules = load_rules(rules_path or s.processor.rules_path)
    plan = vf.expected_plan(rec, rules, s.processor.lateness_s, s.kafka.partitions, id_resolver(s))
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
        diffs = vf.compare(expected, pg, rules)
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
        table.add_row(d.citizen, d.field, short(d.expected), short(d.actual))
    out.print(table)
    if len(diffs) > limit:
        out.print(f"… and {len(diffs) - limit} more")


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- dlq -------------------------------------------------------------------


@main.command()
@kafka_option
@prefix_option
@option(
    "--last",
    envvar="DLQ_LAST",
    type=click.IntRange(min=0),
    default=10,
    help="How many of the latest dead letters to show.",
)
def dlq(kafka: str, topic_prefix: str, last: int) -> None:
    """Count what the processor refused, per reason (read from the dead-letter topic)."""
    from kafka.errors import KafkaError

    from moisson.ops.dlq import read_dead_letters

    s = settings_from(kafka=kafka, topic_prefix=topic_prefix)
    try:
        letters = read_dead_letters(s, keep=last)
    except KafkaError as exc:
        fail(
            f"cannot reach Kafka at {s.kafka.bootstrap_servers}: {exc}",
            kafka_fix(s),
        )
        return
    out.print(f"{s.topics.dlq}: {letters.total:,} dead letter(s)", soft_wrap=True)
    table = Table(title="per reason")
    table.add_column("reason")
    table.add_column("count", justify="right")
    for reason, n in letters.by_reason.most_common():
        table.add_row(reason, f"{n:,}")
    out.print(table)
    if letters.latest and last:
        latest = Table(title="latest")
        for col in ("reason", "from", "key", "bytes", "detail"):
            latest.add_column(col, overflow="fold")
        for d in letters.latest:
            latest.add_row(d["reason"], d["source"], repr(d["key"]), str(d["bytes"]), d["detail"])
        out.print(latest)


# --- rules -----------------------------------------------------------------


@main.command()
@option(
    "--rules-path",
    envvar="PROCESSOR_RULES_PATH",
    type=click.Path(path_type=Path),
    default=None,
    help="A rules TOML replacing the shipped one.",
)
def rules(rules_path: Path | None) -> None:
    """List the scoring rules: what each does, what it mirrors, and where that is reported."""
    book = load_rules_or_fail(rules_path)
    out.print(
        f"base score {book.base_score}; blacklisted under {book.blacklist_threshold}; "
        f"lifted at {book.recovery_threshold} or more; tiers: "
        + ", ".join(f"{t.name} ≥ {t.min}" for t in book.tiers if t.min > -(10**6))
    )
    table = Table(expand=True, show_lines=True)
    for col in ("rule", "Δ", "what it does", "what it mirrors (source)"):
        table.add_column(col)
    for r in (*book.rules, *book.correlations):
        table.add_row(r.id, f"{r.delta:+d}", r.explanation, f"{r.mirrors} ({r.source})")
    out.print(table)


# --- citizen ---------------------------------------------------------------


@main.command()
@click.argument("citizen_id")
@database_option
@option(
    "--last",
    envvar="CITIZEN_LAST",
    type=click.IntRange(min=1),
    default=10,
    help="How many ledger entries to show.",
)
def citizen(citizen_id: str, database_url: str | None, last: int) -> None:
    """Print what the harvester knows about CITIZEN_ID, read from PostgreSQL."""
    from sqlalchemy.exc import OperationalError

    from sinks.postgres.reader import PostgresReader

    s = settings_from(database_url=database_url)
    try:
        pg = PostgresReader(s.database.sqlalchemy_url(), s.database.schema_name)
        profile = pg.profiles([citizen_id]).get(citizen_id)
        ledger = pg.ledger(citizen_id) if profile else []
        periods = pg.blacklist_rows(citizen_id)
    except OperationalError as exc:
        fail(f"cannot read PostgreSQL: {exc.orig}", "set DATABASE_URL (or moisson stack up)")
    if profile is None:
        fail(f"no citizen {citizen_id!r} in the database", "ids look like c0000042")
    out.print(citizen_panel(profile, ledger[-last:], periods))


def citizen_panel(
    profile: dict[str, Any], ledger: list[dict[str, Any]], periods: list[dict[str, Any]]
) -> Any:
    from rich.console import Group
    from rich.panel import Panel

    state = "[bold red]BLACKLISTED[/]" if profile["blacklisted"] else "[green]not blacklisted[/]"
    head = (
        f"[bold]{profile['citizen_id']}[/]  score [bold]{profile['score']}[/] "
        f"(tier {profile['tier']}, base {profile['base_score']})  {state}\n"
        f"{profile['version']} events: {profile['metro_count']} metro, "
        f"{profile['payment_count']} payments, {profile['book_count']} books, "
        f"{profile['camera_count']} sightings; refused {profile['denied_count']}×\n"
        f"places: {top(profile['places'])}\npurchases: {top(profile['purchases'])}\n"
        f"books: {top(profile['books'])}\nseen with: {top(profile['associates'])}"
    )
    table = Table(title="score ledger (latest)", expand=True)
    for col in ("when (UTC)", "rule", "Δ", "score", "why"):
        table.add_column(col)
    for e in ledger:
        table.add_row(
            f"{e['occurred_at']:%Y-%m-%d %H:%M}",
            e["rule_id"],
            f"{e['delta']:+d}",
            f"{e['score_before']}→{e['score_after']}",
            e["explanation"],
        )
    lines = [
        f"on the blacklist {p['entered_at']:%Y-%m-%d %H:%M} → "
        f"{p['lifted_at'].strftime('%Y-%m-%d %H:%M') if p['lifted_at'] else 'now'}"
        for p in periods
    ]
    return Group(Panel(head, title="what the harvester knows"), table, *lines)


def top(counts: dict[str, int], n: int = 4) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{k} ×{v}" for k, v in items) or "—"


# --- process ---------------------------------------------------------------


@main.command(context_settings={"ignore_unknown_options": True})
@kafka_option
@partitions_option
@prefix_option
@option(
    "--app-id",
    envvar="PROCESSOR_APP_ID",
    default=_defaults.processor.app_id,
    help="faust app id (consumer group and changelog topic names).",
)
@option("--loglevel", envvar="PROCESSOR_LOGLEVEL", default="info", help="faust log level.")
def process(kafka: str, partitions: int, topic_prefix: str, app_id: str, loglevel: str) -> None:
    """Run a faust worker: the same as `faust -A processors.worker worker`."""
    s = settings_from(kafka=kafka, partitions=partitions, topic_prefix=topic_prefix)
    s.processor.app_id = app_id
    load_rules_or_fail(s.processor.rules_path)
    from faust.cli.faust import cli as faust_cli

    from moisson.ops.pipeline import worker_args
    from processors.worker import build

    faust_cli.main(args=worker_args(s, loglevel), app=build(s), prog_name="moisson process")


# --- sink ------------------------------------------------------------------


@main.command()
@kafka_option
@prefix_option
@database_option
@option(
    "--group-id",
    envvar="SINK_GROUP_ID",
    default=_defaults.sink.group_id,
    help="Kafka consumer group of the sink.",
)
@option(
    "--batch-size",
    envvar="SINK_BATCH_SIZE",
    type=click.IntRange(min=1),
    default=_defaults.sink.batch_size,
    help="Doubles per database transaction.",
)
def sink(
    kafka: str, topic_prefix: str, database_url: str | None, group_id: str, batch_size: int
) -> None:
    """Write the processor's outputs into PostgreSQL, idempotently: doubles into
    `citizen_profiles`, the ledger stream into `score_ledger`, period updates into
    `blacklist`."""
    from sqlalchemy.exc import OperationalError

    from sinks.postgres.writer import PostgresSink
    from sinks.runner import make_consumer, run_sink

    s = settings_from(kafka=kafka, topic_prefix=topic_prefix, database_url=database_url)
    try:
        from processors.scoring import load_rules

        pg = PostgresSink(
            s.database.sqlalchemy_url(), s.database.schema_name, load_rules(s.processor.rules_path)
        )
    except OperationalError as exc:
        fail(
            f"cannot reach PostgreSQL: {exc.orig}",
            "start it (moisson stack up) or set DATABASE_URL",
        )
        return
    topics = [s.topics.doubles, s.topics.ledger, s.topics.blacklist]
    consumer = make_consumer(topics, group_id, **s.kafka.client_kwargs())
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(
        f"sink: {s.topics.doubles}, {s.topics.ledger}, {s.topics.blacklist} → citizen_profiles,"
        f" score_ledger, blacklist (group {group_id})"
    )
    stats = run_sink(
        consumer,
        pg,
        batch_size,
        s.sink.poll_timeout_ms,
        lambda: stopping,
        retry_max_s=s.sink.retry_max_s,
    )
    consumer.close()
    pg.close()
    console.print(f"sink stopped: {stats.consumed:,} records consumed in {stats.batches:,} batches")


# --- demo ------------------------------------------------------------------


@main.command()
@option(
    "--citizens",
    envvar="SENSORS_CITIZENS",
    type=click.IntRange(min=1),
    default=300,
    help="Size of the simulated crowd (the scenario's cast comes on top).",
)
@option(
    "--days",
    envvar="SENSORS_DAYS",
    type=click.IntRange(min=1),
    default=None,
    help="Simulated days (default: the scenario's, 7 for Lulu's week; else 2).",
)
@seed_option
@option(
    "--speed",
    envvar="SENSORS_SPEED",
    default="7200",
    help="Simulated seconds per real second: 7200 lives a week in 84 s; 'max' for no pacing.",
)
@option(
    "--scenario",
    envvar="DEMO_SCENARIO",
    type=click.Choice(["lulu", "none"]),
    default="lulu",
    help="A scripted story among the crowd: 'lulu' is Lulu's week.",
)
@option("--host", envvar="DEMO_HOST", default="127.0.0.1", help="Where the dashboard listens.")
@option(
    "--port",
    envvar="DEMO_PORT",
    type=click.IntRange(1, 65535),
    default=8350,
    help="Dashboard port.",
)
@option(
    "--broker",
    envvar="STACK_BROKER",
    type=click.Choice(["auto", "apache", "embedded"]),
    default="embedded",
    help="Local Kafka to start when KAFKA_BOOTSTRAP_SERVERS is unset.",
)
@option(
    "--timeout",
    envvar="DEMO_TIMEOUT",
    type=float,
    default=180.0,
    help="Seconds to wait for the pipeline to catch up.",
)
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
    broker: str,
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
    services instead and starts none. Ctrl-C stops everything cleanly.
    """
    from moisson.demo import run_demo

    run_demo(
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
        console=console,
        out=out,
        fail=fail,
        pseudonymise=pseudonymise,
        harvest=harvest,
    )


@main.command()
@kafka_option
@prefix_option
@database_option
@option("--host", envvar="DASHBOARD_HOST", default="127.0.0.1", help="Interface to listen on.")
@option(
    "--port",
    envvar="DASHBOARD_PORT",
    type=click.IntRange(1, 65535),
    default=8350,
    help="Port to listen on.",
)
@click.option("--follow", multiple=True, help="key=citizen_id to offer on the overview.")
def dashboard(
    kafka: str,
    topic_prefix: str,
    database_url: str | None,
    host: str,
    port: int,
    follow: tuple[str, ...],
) -> None:
    """Serve the read-only dashboard: live harvest, scores, blacklist, citizen files."""
    from moisson.dashboard.server import serve

    s = settings_from(kafka=kafka, topic_prefix=topic_prefix, database_url=database_url)
    spotlight = dict(item.split("=", 1) for item in follow if "=" in item)
    console.print(f"dashboard on http://{host}:{port}/")
    serve(s, host, port, spotlight)


# --- topics, health (what a container orchestrator runs) ---------------------


def wanted_topics(s: Settings) -> list[str]:
    """moisson's own topics (faust creates its internal ones itself)."""
    t = s.topics
    return [*t.sensors, t.doubles, t.sanctions, t.dlq]


@main.command()
@kafka_option
@partitions_option
@prefix_option
def topics(kafka: str, partitions: int, topic_prefix: str) -> None:
    """Create moisson's topics when missing, check they all exist, and exit.

    `moisson sensors` does this too before publishing; docker compose runs it once
    so that every service starts on existing topics. The replication factor comes
    from KAFKA_REPLICATION_FACTOR (default 1).
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from producers.publisher import ensure_topics

    s = settings_from(kafka=kafka, partitions=partitions, topic_prefix=topic_prefix)
    try:
        admin = KafkaAdminClient(**s.kafka.client_kwargs())
    except KafkaError as exc:
        fail(
            f"cannot reach Kafka at {s.kafka.bootstrap_servers}: {exc}",
            kafka_fix(s),
        )
        return
    problem: Exception | None = None
    try:
        try:
            created = ensure_topics(s)
        except KafkaError as exc:  # e.g. more replicas than brokers: said below
            created, problem = [], exc
        missing = sorted(set(wanted_topics(s)) - set(admin.list_topics()))
    finally:
        admin.close()
    if missing or problem:
        fail(
            f"Kafka did not create {', '.join(missing) or 'every topic'}"
            + (f": {problem}" if problem else ""),
            f"KAFKA_REPLICATION_FACTOR ({s.kafka.replication_factor}) must not exceed "
            "the number of brokers; see the broker's log",
        )
    for name in wanted_topics(s):
        mark = "created" if name in created else "exists "
        console.print(f"[green]✓[/] {mark} {name}", highlight=False)


HEALTH_CHECKS = ("kafka", "database")


def _checks(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> Any:
    unknown = [
        c for c in value if c not in HEALTH_CHECKS and not c.startswith(("http://", "https://"))
    ]
    if unknown:
        raise click.BadParameter(f"unknown check(s): {', '.join(unknown)}")
    return value


@main.command()
@click.argument("checks", nargs=-1, required=True, callback=_checks)
@kafka_option
@prefix_option
@database_option
@option(
    "--timeout",
    envvar="HEALTH_TIMEOUT",
    type=click.FloatRange(min=0.1),
    default=5.0,
    help="Seconds each check may take.",
)
def health(
    checks: tuple[str, ...],
    kafka: str,
    topic_prefix: str,
    database_url: str | None,
    timeout: float,
) -> None:
    """Exit 0 only when every CHECK passes: a container health check.

    \b
    CHECK is one of:
      kafka      the brokers answer and moisson's topics exist
      database   PostgreSQL answers a query
      URL        an http:// address answers 2xx (the dashboard, faust's web port)
    \b
    Example: moisson health kafka database
    """
    s = settings_from(
        kafka=kafka, topic_prefix=topic_prefix, database_url=database_url, offline=True
    )  # each check reports its own failure
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the ✗ line says what failed
    probes = {"kafka": _kafka_ok, "database": _database_ok}
    failed = 0
    for check in checks:
        try:
            detail = probes.get(check, _http_ok)(s, check, timeout)
        except Exception as exc:  # any failure is the answer; the probe says which
            failed += 1
            console.print(f"[red]✗[/] {check}: {exc}", highlight=False, soft_wrap=True)
        else:
            console.print(f"[green]✓[/] {check}: {detail}", highlight=False, soft_wrap=True)
    if failed:
        sys.exit(1)


def _kafka_ok(s: Settings, _check: str, timeout: float) -> str:
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    admin = KafkaAdminClient(
        **s.kafka.client_kwargs(), request_timeout_ms=ms, bootstrap_timeout_ms=ms
    )
    try:
        missing = sorted(set(wanted_topics(s)) - set(admin.list_topics()))
    finally:
        admin.close()
    if missing:
        raise RuntimeError(f"missing topics {', '.join(missing)} (run `moisson topics`)")
    return f"{s.kafka.bootstrap_servers} has moisson's {len(wanted_topics(s))} topics"


def _database_ok(s: Settings, _check: str, timeout: float) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(s.database.sqlalchemy_url())
    if url.drivername == "postgresql":  # psycopg 3, as the sink uses
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, connect_args={"connect_timeout": max(1, round(timeout))})
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return f"PostgreSQL {version} answers"


def _http_ok(_s: Settings, url: str, timeout: float) -> str:
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as resp:  # raises on 4xx/5xx
        return f"HTTP {resp.status}"


def tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


if __name__ == "__main__":
    main()
