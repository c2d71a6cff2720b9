"""A citizen's file as a terminal panel (the CLI's `citizen` and the demo's closing view)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


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
