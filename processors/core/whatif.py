"""What if the rules were different? Two sets of doubles compared, citizen by citizen,
and the score distribution of each (pure: no faust, Kafka or SQLAlchemy).

Who runs the two folds decides what the comparison means: ``moisson.ops.whatif``
re-simulates a seeded city under each rulebook (the sensors obey each run's own
blacklist, so the feedback is included) or re-scores a recording (its sanctions baked
in); the dashboard re-scores the current run's events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from processors.core.fold import Double
from processors.core.scoring import Rulebook, RulesError

#: A citizen this close to the bottom of the scale counts as "at the floor".
NEAR_FLOOR = 50


def parse_sets(pairs: Iterable[str]) -> dict[str, int]:
    """``["camera.association=0", …]`` as ``{rule id: delta}``; a bad pair raises
    :class:`RulesError` saying how to write it."""
    out: dict[str, int] = {}
    for pair in pairs:
        rule_id, sep, value = pair.partition("=")
        try:
            if not sep or not rule_id.strip():
                raise ValueError
            out[rule_id.strip()] = int(value)
        except ValueError:
            raise RulesError(
                f"--set {pair!r}: write RULE=DELTA, a rule id and a whole number of points "
                "(e.g. --set camera.association=0); `moisson rules` lists the ids"
            ) from None
    return out


def differing_rules(a: Rulebook, b: Rulebook) -> list[tuple[str, int | None, int | None]]:
    """(rule id, delta in ``a``, delta in ``b``) for every rule whose delta differs or
    that only one rulebook has, in ``a``'s order then ``b``'s."""
    da = {r.id: r.delta for r in (*a.rules, *a.correlations)}
    db = {r.id: r.delta for r in (*b.rules, *b.correlations)}
    ids = [*da, *(i for i in db if i not in da)]
    return [(i, da.get(i), db.get(i)) for i in ids if da.get(i) != db.get(i)]


@dataclass(frozen=True, slots=True)
class Distribution:
    """Where a run's scores lie: bands of ``width`` points, the blacklisted, the floor."""

    citizens: int
    blacklisted: int
    near_floor: int  # within NEAR_FLOOR points of the bottom of the scale
    bands: tuple[tuple[int, int], ...]  # (from, how many), every band of the scale
    percentiles: tuple[tuple[int, int], ...]  # (percent, score)

    @property
    def share(self) -> float:
        return self.blacklisted / self.citizens if self.citizens else 0.0

    @property
    def floor_share(self) -> float:
        return self.near_floor / self.citizens if self.citizens else 0.0


def distribution(doubles: Mapping[str, Double], rules: Rulebook, width: int = 100) -> Distribution:
    """The score distribution of ``doubles`` on the scale of ``rules``."""
    scores = sorted(int(d["score"]) for d in doubles.values())
    low, high = rules.score_min, rules.score_max
    counts = Counter(min(high - 1, s) // width * width for s in scores)
    bands = tuple((b, counts.get(b, 0)) for b in range(low // width * width, high, width))

    def at(p: int) -> int:
        return scores[round(p / 100 * (len(scores) - 1))] if scores else low

    return Distribution(
        citizens=len(scores),
        blacklisted=sum(1 for d in doubles.values() if d["blacklisted"]),
        near_floor=sum(1 for s in scores if s < low + NEAR_FLOOR),
        bands=bands,
        percentiles=tuple((p, at(p)) for p in (1, 5, 25, 50, 75, 95, 99)),
    )


@dataclass(frozen=True, slots=True)
class RuleEffect:
    """One rule's entries in a citizen's ledger under each rulebook: how many, how much."""

    rule_id: str
    before: tuple[int, int]  # (entries, points) under the first rulebook
    after: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Change:
    """A citizen whose tier or blacklisting differs between the two runs, and why."""

    citizen_id: str
    score: tuple[int, int]
    tier: tuple[str, str]
    blacklisted: tuple[bool, bool]
    refused: tuple[int, int]  # times a gate or a terminal refused them
    why: tuple[RuleEffect, ...]  # the rules whose entries differ

    @property
    def kind(self) -> str:
        """'freed', 'listed' (newly on the blacklist) or 'tier' (only the tier moved)."""
        if self.blacklisted == (True, False):
            return "freed"
        if self.blacklisted == (False, True):
            return "listed"
        return "tier"


def _effects(double: Double | None) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for e in double["ledger"] if double else ():
        n, points = out.get(e["rule_id"], (0, 0))
        out[e["rule_id"]] = (n + 1, points + e["delta"])
    return out


def _state(double: Double | None, rules: Rulebook) -> tuple[int, str, bool, int]:
    if double is None:
        return rules.base_score, rules.tier(rules.base_score), False, 0
    return double["score"], double["tier"], double["blacklisted"], double["denied_count"]


def compare(
    before: Mapping[str, Double],
    after: Mapping[str, Double],
    rules_before: Rulebook,
    rules_after: Rulebook,
) -> list[Change]:
    """Every citizen whose tier or blacklisting differs: freed first, then newly listed,
    then tier moves, each by the size of the score change."""
    changes = []
    for cid in sorted(before.keys() | after.keys()):
        a, b = before.get(cid), after.get(cid)
        sa, ta, la, ra = _state(a, rules_before)
        sb, tb, lb, rb = _state(b, rules_after)
        if ta == tb and la == lb:
            continue
        ea, eb = _effects(a), _effects(b)
        why = tuple(
            RuleEffect(r, ea.get(r, (0, 0)), eb.get(r, (0, 0)))
            for r in [*ea, *(r for r in eb if r not in ea)]
            if ea.get(r) != eb.get(r)
        )
        changes.append(Change(cid, (sa, sb), (ta, tb), (la, lb), (ra, rb), why))
    order = {"freed": 0, "listed": 1, "tier": 2}
    return sorted(changes, key=lambda c: (order[c.kind], -abs(c.score[1] - c.score[0])))
