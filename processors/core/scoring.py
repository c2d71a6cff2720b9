"""Declarative scoring rules: which events move the score, by how much, and why.

Pure: reads a TOML file, imports no faust, Kafka or SQLAlchemy.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas.kinds import SENSOR_KINDS

DEFAULT_RULES_PATH = Path(__file__).parents[1] / "rules.toml"
KINDS = SENSOR_KINDS
#: Beijing time, for rules about hours of the day (China has no daylight saving).
BEIJING = timezone(timedelta(hours=8))


class RulesError(ValueError):
    """A rules file that cannot be used, with the file and the reason."""


def local_hour(at: datetime | int) -> int:
    if isinstance(at, int):
        at = datetime.fromtimestamp(at / 1000, tz=UTC)
    return at.astimezone(BEIJING).hour


@dataclass(frozen=True)
class Condition:
    """Field equalities, local hours and non-empty lists an event must satisfy."""

    kind: str
    when: Mapping[str, Any] = field(default_factory=dict)
    when_hour_in: frozenset[int] | None = None
    when_nonempty: tuple[str, ...] = ()

    def matches(self, kind: str, record: Mapping[str, Any]) -> bool:
        return kind == self.kind and self.holds(record)

    def holds(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` (of this condition's kind) meets it; plain loops, since
        every rule is tried on every event."""
        for k, v in self.when.items():
            if record.get(k) != v:
                return False
        for k in self.when_nonempty:
            if not record.get(k):
                return False
        return self.when_hour_in is None or local_hour(record["occurred_at"]) in self.when_hour_in


@dataclass(frozen=True)
class Explained:
    """What every scoring rule carries: an id, a delta and its honest explanation."""

    id: str
    delta: int
    explanation: str
    mirrors: str
    source: str


@dataclass(frozen=True)
class Rule(Explained):
    """Fires on a single event that meets its condition."""

    condition: Condition = field(default_factory=lambda: Condition(kind=""))
    record: bool = False  # ledger it even when delta is 0 (a refusal, a logged purchase)

    def matches(self, kind: str, record: Mapping[str, Any]) -> bool:
        return self.condition.matches(kind, record)


@dataclass(frozen=True)
class MarkRule:
    """Remembers matching events under ``kind`` for the correlation rules."""

    kind: str
    condition: Condition


@dataclass(frozen=True)
class Correlation(Explained):
    """Fires on a ``trigger`` mark given other marks (``within`` or ``repeated``)."""

    type: str = "within"
    trigger: str = ""
    with_: str = ""
    window_ms: int = 0
    at_least: int = 1


@dataclass(frozen=True)
class Tier:
    name: str
    min: int


@dataclass(frozen=True)
class Rulebook:
    """All rules plus the score's base, the blacklist thresholds and the tiers."""

    base_score: int
    blacklist_threshold: int
    recovery_threshold: int
    rules: tuple[Rule, ...]
    score_min: int = 0
    score_max: int = 1000
    marks: tuple[MarkRule, ...] = ()
    correlations: tuple[Correlation, ...] = ()
    tiers: tuple[Tier, ...] = ()
    by_kind: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grouped = {k: tuple(r for r in self.rules if r.condition.kind == k) for k in KINDS}
        object.__setattr__(self, "by_kind", grouped)

    def hits(self, kind: str, record: Mapping[str, Any]) -> list[Rule]:
        """The single-event rules an event fires, in file order."""
        return [r for r in self.by_kind.get(kind, ()) if r.condition.holds(record)]

    def marks_for(self, kind: str, record: Mapping[str, Any]) -> list[str]:
        return [
            m.kind for m in self.marks if m.condition.kind == kind and m.condition.holds(record)
        ]

    def rule(self, rule_id: str) -> Explained:
        for r in (*self.rules, *self.correlations):
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def with_deltas(self, deltas: Mapping[str, int]) -> Rulebook:
        """These rules with some deltas changed (``{rule id: delta}``), for a what-if;
        an unknown id raises :class:`RulesError` listing the known ones."""
        known = [r.id for r in (*self.rules, *self.correlations)]
        unknown = sorted(set(deltas) - set(known))
        if unknown:
            raise RulesError(
                f"no rule {', '.join(map(repr, unknown))}; the rules are: {', '.join(known)}"
            )
        return replace(
            self,
            rules=tuple(replace(r, delta=deltas.get(r.id, r.delta)) for r in self.rules),
            correlations=tuple(
                replace(c, delta=deltas.get(c.id, c.delta)) for c in self.correlations
            ),
        )

    def clamp(self, score: int) -> int:
        """``score`` held to the scale; applied at every step of the event-time walk."""
        return min(self.score_max, max(self.score_min, score))

    def tier(self, score: int) -> str:
        for t in self.tiers:
            if score >= t.min:
                return t.name
        return self.tiers[-1].name if self.tiers else ""


EXPLAINED_KEYS = {"id", "delta", "explanation", "mirrors", "source"}


def _condition(path: Path, where: str, kind: str, raw: Mapping[str, Any]) -> Condition:
    if kind not in KINDS:
        raise RulesError(f"{path}: {where} has unknown kind {kind!r}")
    hours = raw.get("when_hour_in")
    if hours is not None and not all(isinstance(h, int) and 0 <= h < 24 for h in hours):
        raise RulesError(f"{path}: {where} has hours outside 0–23")
    return Condition(
        kind=kind,
        when=dict(raw.get("when", {})),
        when_hour_in=frozenset(hours) if hours is not None else None,
        when_nonempty=tuple(raw.get("when_nonempty", ())),
    )


def _explained(path: Path, where: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    missing = EXPLAINED_KEYS - raw.keys()
    if missing:
        raise RulesError(f"{path}: {where} lacks {', '.join(sorted(missing))}")
    return {k: raw[k] for k in EXPLAINED_KEYS} | {"delta": int(raw["delta"])}


def _parse(path: Path, data: Mapping[str, Any]) -> Rulebook:
    rules: list[Rule] = []
    for i, raw in enumerate(data.get("rule", [])):
        where = f"rule {raw.get('id', f'#{i + 1}')!r}"
        rules.append(
            Rule(
                **_explained(path, where, raw),
                condition=_condition(path, where, raw.get("kind", ""), raw),
                record=bool(raw.get("record", False)),
            )
        )
    marks = [
        MarkRule(
            kind=raw["kind"],
            condition=_condition(path, f"mark {raw['kind']!r}", raw.get("event", ""), raw),
        )
        for raw in data.get("mark", [])
    ]
    mark_kinds = {m.kind for m in marks}
    correlations: list[Correlation] = []
    for raw in data.get("correlation", []):
        where = f"correlation {raw.get('id')!r}"
        kind = raw.get("type")
        if kind not in ("within", "repeated"):
            raise RulesError(f"{path}: {where} has type {kind!r}; use 'within' or 'repeated'")
        for needed in (raw.get("trigger"), raw.get("with") if kind == "within" else None):
            if needed is not None and needed not in mark_kinds:
                raise RulesError(f"{path}: {where} uses mark {needed!r}, which no [[mark]] defines")
        correlations.append(
            Correlation(
                **_explained(path, where, raw),
                type=kind,
                trigger=raw["trigger"],
                with_=raw.get("with", ""),
                window_ms=int(raw["window_hours"] * 3_600_000),
                at_least=int(raw.get("at_least", 1)),
            )
        )
    ids = [r.id for r in (*rules, *correlations)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RulesError(f"{path}: rule ids appear twice: {', '.join(dupes)}")
    tiers = sorted(
        (Tier(name=t["name"], min=int(t["min"])) for t in data.get("tier", [])),
        key=lambda t: -t.min,
    )
    base, enter = int(data["base_score"]), int(data["blacklist_threshold"])
    leave = int(data.get("recovery_threshold", enter))
    if leave < enter:
        raise RulesError(f"{path}: recovery_threshold {leave} is below blacklist_threshold {enter}")
    low, high = int(data.get("score_min", 0)), int(data.get("score_max", 1000))
    if not low <= enter <= leave <= high or not low <= base <= high:
        raise RulesError(
            f"{path}: the scale {low}–{high} must hold base_score {base}, "
            f"blacklist_threshold {enter} and recovery_threshold {leave}"
        )
    return Rulebook(
        base_score=base,
        blacklist_threshold=enter,
        recovery_threshold=leave,
        rules=tuple(rules),
        score_min=low,
        score_max=high,
        marks=tuple(marks),
        correlations=tuple(correlations),
        tiers=tuple(tiers),
    )


def load_rules(path: Path | str | None = None) -> Rulebook:
    """Load and validate a rules file (the shipped one by default)."""
    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"{path}: {exc}") from exc
    try:
        return _parse(path, data)
    except KeyError as exc:
        raise RulesError(f"{path}: missing key {exc}") from exc
