"""The dashboard's "What if" page: the current run's events re-scored under reweighted
rules, side by side with the live rules. Read-only: it folds in memory, and sends and
writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from moisson.ops.whatif import rescore_events
from processors.core.fold import Event
from processors.core.privacy import Privacy
from processors.core.scoring import Rulebook
from processors.core.whatif import Change, Distribution

NOTE = (
    "Re-scored from this run's events as the sensors recorded them: who was refused at a "
    "gate, or seen with a blacklisted companion, stays as it happened under the live "
    "rules. `moisson whatif` re-simulates the city instead, feedback included."
)
BAND = 50  # points per histogram bar


def rulebook_rows(live: Rulebook, variant: Rulebook) -> list[dict[str, Any]]:
    """Every rule with its live and variant delta, for the page's form."""
    theirs = {r.id: r.delta for r in (*variant.rules, *variant.correlations)}
    return [
        {
            "id": r.id,
            "live": r.delta,
            "variant": theirs[r.id],
            "explanation": r.explanation,
            "correlation": r in live.correlations,
        }
        for r in (*live.rules, *live.correlations)
        if r.delta or theirs[r.id]
    ]


def _distribution(d: Distribution) -> dict[str, Any]:
    return {
        "citizens": d.citizens,
        "blacklisted": d.blacklisted,
        "share": d.share,
        "bands": [{"from": lo, "count": n} for lo, n in d.bands],
    }


def _change(c: Change, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": c.citizen_id,
        "name": names.get(c.citizen_id, ""),
        "score": list(c.score),
        "tier": list(c.tier),
        "refused": list(c.refused),
        "why": [
            {"rule": e.rule_id, "live": list(e.before), "variant": list(e.after)} for e in c.why
        ],
    }


def what_if(
    events: Sequence[Event],
    live: Rulebook,
    variant: Rulebook,
    privacy: Privacy | None,
    names: Callable[[list[str]], Mapping[str, str]],
) -> dict[str, Any]:
    """The page's payload: ``events`` under the ``live`` rules and under ``variant``
    (the live ones with some deltas changed: ``Rulebook.with_deltas``)."""
    w = rescore_events(events, live, variant, privacy, width=BAND)
    listed = {
        side: [
            c
            for c, d in sorted(run.doubles.items(), key=lambda kv: kv[1]["score"])
            if d["blacklisted"]
        ]
        for side, run in (("live", w.live), ("variant", w.variant))
    }
    changed = [c for c in w.changes if c.kind in ("freed", "listed")]
    who = names(sorted({*listed["live"], *listed["variant"], *(c.citizen_id for c in changed)}))

    def side(name: str, run: Any) -> dict[str, Any]:
        return {
            "distribution": _distribution(run.distribution),
            "blacklist": [
                {"id": c, "name": who.get(c, ""), "score": run.doubles[c]["score"]}
                for c in listed[name]
            ],
        }

    return {
        "events": w.live.events,
        "note": NOTE,
        "scale": {
            "min": live.score_min,
            "max": live.score_max,
            "threshold": live.blacklist_threshold,
            "band": BAND,
        },
        "rules": rulebook_rows(live, variant),
        "live": side("live", w.live),
        "variant": side("variant", w.variant),
        "freed": [_change(c, who) for c in w.of_kind("freed")],
        "listed": [_change(c, who) for c in w.of_kind("listed")],
        "tier_changes": len(w.of_kind("tier")),
    }
