"""What every command shares: the settings from flags, the one way to fail (an
``error:`` line and a ``fix:`` line), the consoles and progress bars."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from moisson.errors import MoissonError
from moisson.panels import shown
from moisson.settings import Settings

if TYPE_CHECKING:
    from processors.core.scoring import Rulebook


console = Console(stderr=True)
out = Console()


def settings_from(**flags: Any) -> Settings:
    """Settings from the environment with the given CLI flags applied.

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
    kafka: dict[str, Any] = {}
    if flags.get("kafka"):
        kafka["bootstrap_servers"] = flags["kafka"]
    if flags.get("partitions"):
        kafka["partitions"] = flags["partitions"]
    if kafka:
        s = s.replace(kafka=kafka)
    if flags.get("topic_prefix") is not None:
        s = s.replace(topics={"prefix": flags["topic_prefix"]})
    if flags.get("database_url"):
        from pydantic import SecretStr

        s = s.replace(database={"url": SecretStr(flags["database_url"])})
    if flags.get("kafka") and not flags.get("offline"):
        preflight.kafka(s.kafka)  # a PreflightError: the moisson group shows it
    return s


def serve_metrics(s: Settings, registry: Any, what: str) -> Any:
    """Serve ``registry`` on the ``what`` service's metrics port and say where; None when
    ``METRICS_ENABLED=false``. A taken port fails with the env var to change."""
    if not s.metrics.enabled:
        return None
    from moisson.metrics import MetricsError, serve

    port = getattr(s.metrics, f"{what}_port")
    try:
        server = serve(registry, s.metrics.host, port, what, f"METRICS_{what.upper()}_PORT")
    except MetricsError as exc:  # at once: `sensors` prints what it obeyed in a finally
        fail_with(exc)
    console.print(f"{what} metrics: {server.url}", highlight=False, soft_wrap=True)
    return server


def kafka_fix(s: Settings) -> str:
    """What to check when Kafka refuses us."""
    from moisson.preflight import KAFKA_FIX

    fix = KAFKA_FIX
    if s.kafka.security_protocol.startswith("SASL"):
        fix += "; a broker that drops the connection may refuse KAFKA_SASL_USERNAME/PASSWORD"
    return fix


def fail_with(exc: MoissonError) -> NoReturn:
    """How every :class:`MoissonError` is shown: its message, then its fix. The ``moisson``
    group calls it for any that a command lets through; a command calls it itself only
    where it must stop at once (before a ``finally`` of its caller prints)."""
    fail(str(exc), exc.fix)


def fail(message: str, fix: str | None = None) -> NoReturn:
    """One clear line (and the fix), no traceback wall; both may quote hostile input."""
    line = Text.assemble(("error:", "bold red"), " ", shown(message))
    console.print(line, soft_wrap=True, highlight=False)
    if fix:
        line = Text.assemble(("fix:", "yellow"), " ", shown(fix))
        console.print(line, soft_wrap=True, highlight=False)
    sys.exit(1)


def load_rules_or_fail(path: Path | None) -> Rulebook:
    """The rules at ``path`` (None: the shipped ones), or one clear error."""
    from processors.core.scoring import RulesError, load_rules

    try:
        return load_rules(path)
    except RulesError as exc:
        fail(str(exc), "fix the file, or unset PROCESSOR_RULES_PATH to use the shipped rules")


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
    """The recording at ``directory``, opened and read through once, or one clear error
    (its names escaped: a recording is untrusted input)."""
    from rich.markup import escape

    from moisson.ops.recording import RecordingError, open_recording

    try:
        rec = open_recording(directory)
        rec.check()
    except RecordingError as exc:
        fail(escape(str(exc)), exc.fix)
    return rec


def summary_table(manifest: dict[str, Any]) -> Table:
    title = Text.assemble("recording (", shown(manifest["source"]), f", {manifest['count']:,}")
    table = Table(title=title + " messages)")
    for col in ("topic", "partitions", "messages", "sha256"):
        table.add_column(col)
    for topic, t in manifest["topics"].items():
        table.add_row(
            shown(topic), shown(t["partitions"]), f"{t['count']:,}", shown(f"{t['sha256']:.16}…")
        )
    return table


def kafka_unreachable(s: Settings, exc: Exception) -> NoReturn:
    """The one "cannot reach Kafka" failure, with what to check."""
    fail(f"cannot reach Kafka at {s.kafka.bootstrap_servers}: {exc}", kafka_fix(s))
