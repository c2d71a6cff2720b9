"""``moisson whatif``: the same city, or a recording, under a variant rulebook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from moisson.cli.base import console, fail, load_rules_or_fail, out
from moisson.cli.params import crowd_option, days_option, option, scenario_option, seed_option
from moisson.ops.whatif import WhatIf
from moisson.panels import shown
from processors.core.whatif import Change, Distribution


@click.command()
@option(
    "--rules",
    "variant_path",
    envvar="WHATIF_RULES",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A variant rules TOML to compare with the live rules.",
)
@option(
    "--set",
    "sets",
    envvar="WHATIF_SET",
    multiple=True,
    metavar="RULE=DELTA",
    help="Give a rule (or a correlation) another delta; repeat it. "
    "E.g. --set book.banned=0 --set correlation.banned-book-and-protest=0.",
)
@option(
    "--rules-path",
    envvar="PROCESSOR_RULES_PATH",
    type=click.Path(path_type=Path),
    default=None,
    help="The live rules (default: the shipped ones).",
)
@seed_option
@crowd_option
@days_option(7, "Simulated days.")
@scenario_option
@option(
    "--recording",
    envvar="WHATIF_RECORDING",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Re-score a recording instead of re-simulating (its sanctions stay baked in).",
)
@option(
    "--limit",
    envvar="WHATIF_LIMIT",
    type=click.IntRange(min=0),
    default=20,
    help="Citizens to list per kind of change.",
)
@option(
    "--json",
    "json_out",
    envvar="WHATIF_JSON",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the comparison (distributions and changes) as JSON.",
)
def whatif(
    variant_path: Path | None,
    sets: tuple[str, ...],
    rules_path: Path | None,
    seed: int,
    citizens: int,
    days: int,
    scenario: str,
    recording: Path | None,
    limit: int,
    json_out: Path | None,
) -> None:
    """Compare the live rules with a variant: who changes tier, who would be freed from
    the blacklist or newly put on it, and which rule entries make the difference.

    \b
    On a seeded city (the default: the demo's seed 42, 300 citizens and Lulu's week)
    each rulebook gets its own simulation, so the feedback is included: the sensors
    obey that run's own blacklist. With --recording the events are re-scored as they
    were recorded, with that run's sanctions baked in. Nothing is sent to Kafka or
    written to a database.

    \b
    Examples:
      moisson whatif --set camera.association=0
      moisson whatif --set book.banned=0 --set correlation.banned-book-and-protest=0
      moisson whatif --rules variant.toml --citizens 5000 --scenario none
    """
    from rich.markup import escape

    from moisson.ops import whatif as lab
    from moisson.ops.recording import RecordingError
    from processors.core.scoring import RulesError, load_rules
    from processors.core.whatif import parse_sets

    live = load_rules_or_fail(rules_path)
    if variant_path is None and not sets:
        fail(
            "nothing to compare: give a variant rulebook or a delta to change",
            "add --set RULE=DELTA (e.g. --set camera.association=0) or --rules variant.toml",
        )
    try:
        variant = load_rules(variant_path) if variant_path is not None else live
        variant = variant.with_deltas(parse_sets(sets))
    except RulesError as exc:
        fail(str(exc), "`moisson rules` lists every rule id and its delta")

    def say(message: str) -> None:
        console.print(shown(f"{message}…", "dim"), highlight=False)

    if recording is not None:
        try:
            result = lab.rescore(recording, live, variant, progress=say)
        except RecordingError as exc:
            fail(escape(str(exc)), exc.fix)
    else:
        story = None if scenario == "none" else scenario
        result = lab.simulate(seed, citizens, days, live, variant, story, progress=say)
    render(result, limit)
    if json_out is not None:
        json_out.write_text(json.dumps(as_json(result), indent=1, ensure_ascii=False) + "\n")
        console.print(Text.assemble(("✓", "green"), " wrote ", shown(json_out)))


def _delta(v: int | None) -> str:
    return "—" if v is None else f"{v:+d}"


def render(w: WhatIf, limit: int) -> None:
    """Print the comparison: the rules, the two distributions, then who changes."""
    out.print(Text.assemble(("What if", "bold"), " — ", shown(w.about)), highlight=False)
    out.print(shown(w.note, "dim"), highlight=False)
    rules = Table(title="rules that differ")
    for col in ("rule", "live", "variant"):
        rules.add_column(col)
    for rule_id, a, b in w.rules:
        rules.add_row(shown(rule_id), _delta(a), _delta(b))
    out.print(rules if w.rules else "[yellow]the two rulebooks give every rule the same delta[/]")
    out.print(distribution_table(w.live.distribution, w.variant.distribution))
    for kind, title in (
        ("freed", "would be free"),
        ("listed", "would be newly blacklisted"),
        ("tier", "would change tier"),
    ):
        changes = w.of_kind(kind)
        out.print(f"[bold]{len(changes)}[/] citizen(s) {title}", highlight=False)
        if changes and limit:
            out.print(changes_table(w, changes[:limit]))


def distribution_table(a: Distribution, b: Distribution) -> Table:
    t = Table(title="scores after the run")
    for col in ("", "live", "variant"):
        t.add_column(col, justify="right")
    t.add_row("citizens", f"{a.citizens:,}", f"{b.citizens:,}")
    t.add_row(
        "blacklisted", f"{a.blacklisted:,} ({a.share:.1%})", f"{b.blacklisted:,} ({b.share:.1%})"
    )
    t.add_row("at the floor", f"{a.near_floor:,}", f"{b.near_floor:,}")
    for (lo, na), (_, nb) in zip(a.bands, b.bands, strict=True):
        t.add_row(f"{lo}–{lo + 99}", f"{na:,}", f"{nb:,}")
    for (p, sa), (_, sb) in zip(a.percentiles, b.percentiles, strict=True):
        t.add_row(f"p{p}", str(sa), str(sb))
    return t


def why(c: Change) -> str:
    return "; ".join(
        f"{e.rule_id} {e.before[0]}× {e.before[1]:+d} → {e.after[0]}× {e.after[1]:+d}"
        for e in c.why
    )


def changes_table(w: WhatIf, changes: list[Change]) -> Table:
    t = Table(show_lines=True)
    for col in ("citizen", "score", "tier", "refused", "why (the entries that differ)"):
        t.add_column(col)
    for c in changes:
        name = w.names.get(c.citizen_id, "")
        t.add_row(
            shown(f"{c.citizen_id} {name}".strip()),
            f"{c.score[0]} → {c.score[1]}",
            f"{c.tier[0]} → {c.tier[1]}",
            f"{c.refused[0]} → {c.refused[1]}",
            shown(why(c)),
        )
    return t


def as_json(w: WhatIf) -> dict[str, Any]:
    def dist(d: Distribution) -> dict[str, Any]:
        return {
            "citizens": d.citizens,
            "blacklisted": d.blacklisted,
            "share": round(d.share, 5),
            "near_floor": d.near_floor,
            "bands": [{"from": lo, "count": n} for lo, n in d.bands],
            "percentiles": {f"p{p}": s for p, s in d.percentiles},
        }

    return {
        "mode": w.mode,
        "about": w.about,
        "note": w.note,
        "rules": [{"rule": r, "live": a, "variant": b} for r, a, b in w.rules],
        "live": dist(w.live.distribution) | {"events": w.live.events},
        "variant": dist(w.variant.distribution) | {"events": w.variant.events},
        "changes": [
            {
                "citizen_id": c.citizen_id,
                "name": w.names.get(c.citizen_id, ""),
                "kind": c.kind,
                "score": list(c.score),
                "tier": list(c.tier),
                "blacklisted": list(c.blacklisted),
                "refused": list(c.refused),
                "why": [
                    {"rule": e.rule_id, "live": list(e.before), "variant": list(e.after)}
                    for e in c.why
                ],
            }
            for c in w.changes
        ],
    }
