"""What every bench part shares: its :class:`Result`, the sizes, the services, the output.

A part is a function of its settings and size that returns one or more results; the
harness gives it services (:func:`services`, through the project's own
:func:`moisson.stack.provision.provide`) and a run of its own on them (:func:`isolate`),
turns a failing part into a failed result (:func:`attempt`) and writes
``bench/results/latest.json`` after every part (:func:`write`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from moisson.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass
class Result:
    """One bench figure: ``value`` against ``baseline``, and whether ``target`` is met."""

    id: str
    value: float | None
    unit: str
    baseline: float | None
    ratio: float | None
    target: str
    met: bool | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sizes:
    """How much each part measures: :data:`FULL` for `make bench`, :data:`QUICK` to iterate."""

    p1: int
    p2: int
    p3: int
    p4_seconds: float
    p4_rate: int  # only without P2 in the run (not gated): else half of P2's one worker
    p5: tuple[int, ...]
    p6: int
    g: int  # events of one citizen's history (part G; its baseline is a tenth of it)
    m: int = 300_000  # part M: events per worker run (faust's monitor on, then off)


FULL = Sizes(
    p1=200_000,
    p2=500_000,
    p3=50_000,
    p4_seconds=120,
    p4_rate=5000,
    p5=(100_000, 1_000_000),
    p6=200_000,
    g=100_000,
)
QUICK = Sizes(
    p1=50_000,
    p2=100_000,
    p3=10_000,
    p4_seconds=20,
    p4_rate=5000,
    p5=(100_000,),
    p6=50_000,
    g=50_000,
    m=100_000,
)


@cache
def console() -> Console:
    """The one console the bench prints to (made on first use, not at import)."""
    from rich.console import Console

    return Console()


def say(msg: str) -> None:
    """One progress line, stamped with the time."""
    console().print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {msg}")


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[Settings]:
    """Kafka and PostgreSQL: the configured ones (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL),
    else local ones started under ``workdir``; faust's data under ``workdir/faust``."""
    from moisson.settings import Settings
    from moisson.stack.provision import provide

    with provide(Settings(), workdir, kafka=True, database=True, say=say) as s:
        yield s.replace(processor={"data_dir": workdir / "faust"})


def isolate(s: Settings, name: str) -> Settings:
    """A copy of ``s`` with its own topics, consumer groups, app id and schema, all named
    ``bench-{name}-{run}``. The processor keeps the shipped defaults: what users run."""
    from moisson.stack.provision import isolated

    return isolated(s, f"bench-{name}")


def attempt(name: str, step: Callable[[], Any]) -> Any:
    """Run one part; a failure becomes a failed Result, so the other parts still run."""
    try:
        return step()
    except Exception as exc:  # one part failing must not lose the others
        console().print_exception()
        return Result(name, None, "", None, None, "ran", False, {"error": repr(exc)})


def listed(got: Result | list[Result]) -> list[Result]:
    """A part's one result or several, as a list."""
    return got if isinstance(got, list) else [got]


def write(results: list[Result], meta: dict[str, Any], out: Path = RESULTS) -> None:
    """``latest.json``: every result so far, each with the run's ``meta``."""
    out.mkdir(exist_ok=True)
    rows = [{**asdict(r), "meta": meta} for r in results]
    (out / "latest.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")


def show(results: list[Result], meta: dict[str, Any]) -> None:
    """The results as a table on the terminal."""
    from rich.table import Table

    table = Table(title=f"moisson bench — {meta['date']} — {meta['cores']} cores")
    for col in ("id", "value", "baseline", "ratio", "target", "met"):
        table.add_column(col)
    for r in results:
        met = "—" if r.met is None else ("[green]yes[/green]" if r.met else "[red]no[/red]")
        table.add_row(
            r.id,
            "—" if r.value is None else f"{r.value:,} {r.unit}",
            "—" if r.baseline is None else f"{r.baseline:,}",
            "—" if r.ratio is None else f"{r.ratio:.3f}",
            r.target,
            met,
        )
    console().print(table)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results (as read back from ``latest.json``) as the README's table."""

    def num(v: Any) -> str:
        return "—" if v is None else f"{v:,}"

    lines = ["| id | value | baseline | ratio | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        value = "—" if r["value"] is None else f"{r['value']:,} {r['unit']}"
        lines.append(
            f"| {r['id']} | {value} | {num(r['baseline'])} | {num(r['ratio'])} |"
            f" {r['target']} | {met} |"
        )
    return "\n".join(lines)
