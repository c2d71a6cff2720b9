"""``moisson rules``: the rulebook and the practice each rule mirrors."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from moisson.cli.base import (
    load_rules_or_fail,
    out,
)
from moisson.cli.params import (
    option,
)


@click.command()
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
