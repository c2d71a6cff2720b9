"""A citizen's file as a terminal panel (the CLI's `citizen` and the demo's closing view),
and :func:`shown`, the one way any text a sensor, a recording or a dead letter chose
reaches the terminal."""

from __future__ import annotations

import re
from typing import Any

from rich.table import Table
from rich.text import Text

# C0 controls (newline and tab too), DEL, C1 controls (0x9b is a CSI on its own), and the
# bidirectional overrides and isolates that reorder what a terminal shows.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value: object, style: str = "") -> Text:
    """``value`` as rich text that prints literally: a Text is never parsed for markup or
    emoji codes, so a title such as ``[/]`` cannot crash or restyle the output, and every
    control character becomes its ``\\x..`` escape, so no escape sequence reaches the
    terminal. The one way text a sensor, a recording or a dead letter chose is printed."""
    text = UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), str(value))
    return Text(text, style=style)


def citizen_panel(
    profile: dict[str, Any], ledger: list[dict[str, Any]], periods: list[dict[str, Any]]
) -> Any:
    from rich.console import Group
    from rich.panel import Panel

    state = ("BLACKLISTED", "bold red") if profile["blacklisted"] else ("not blacklisted", "green")
    head = Text.assemble(
        shown(profile["citizen_id"], "bold"),
        "  score ",
        (str(profile["score"]), "bold"),
        f" (tier {profile['tier']}, base {profile['base_score']})  ",
        state,
        f"\n{profile['version']} events: {profile['metro_count']} metro, "
        f"{profile['payment_count']} payments, {profile['book_count']} books, "
        f"{profile['camera_count']} sightings; refused {profile['denied_count']}×",
        "\nplaces: ",
        top(profile["places"]),
        "\npurchases: ",
        top(profile["purchases"]),
        "\nbooks: ",
        top(profile["books"]),
        "\nseen with: ",
        top(profile["associates"]),
    )
    table = Table(title="score ledger (latest)", expand=True)
    for col in ("when (UTC)", "rule", "Δ", "score", "why"):
        table.add_column(col)
    for e in ledger:
        table.add_row(
            f"{e['occurred_at']:%Y-%m-%d %H:%M}",
            shown(e["rule_id"]),
            f"{e['delta']:+d}",
            f"{e['score_before']}→{e['score_after']}",
            shown(e["explanation"]),
        )
    lines = [
        f"on the blacklist {p['entered_at']:%Y-%m-%d %H:%M} → "
        f"{p['lifted_at'].strftime('%Y-%m-%d %H:%M') if p['lifted_at'] else 'now'}"
        for p in periods
    ]
    return Group(Panel(head, title="what the harvester knows"), table, *lines)


def top(counts: dict[str, int], n: int = 4) -> Text:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return Text(", ").join(shown(f"{k} ×{v}") for k, v in items) or Text("—")
