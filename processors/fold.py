"""The pure fold ``(double, event) -> double``.

This is the one definition of what the harvester concludes about a citizen. The
faust agent and the offline oracle both call it, so they cannot disagree. It imports
no faust, Kafka or SQLAlchemy (an import-linter contract holds it to that).

Every part of the fold commutes (sums, counts, min and max), so the result does not
depend on the order in which a citizen's events arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from processors.scoring import Rulebook, load_rules

Double = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded sensor event and the kind of sensor that produced it."""

    kind: str
    record: Mapping[str, Any]

    @property
    def citizen_id(self) -> str:
        return str(self.record["citizen_id"])


@lru_cache(maxsize=1)
def default_rules() -> Rulebook:
    return load_rules()


def as_datetime(value: datetime | int) -> datetime:
    """A timestamp-millis value as an aware UTC datetime (Avro accepts both)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def new_double(citizen_id: str, rules: Rulebook | None = None) -> Double:
    """The double of a citizen the harvester has not yet seen."""
    rules = rules or default_rules()
    return {
        "citizen_id": citizen_id,
        "version": 0,
        "score": rules.base_score,
        "metro_count": 0,
        "payment_count": 0,
        "book_count": 0,
        "camera_count": 0,
        "first_seen": None,
        "last_seen": None,
        "rule_hits": {},
        "source_offsets": {},
    }


def fold(double: Double | None, event: Event, rules: Rulebook | None = None) -> Double:
    """Return a new double with ``event`` merged in; ``double`` is left untouched."""
    rules = rules or default_rules()
    cid = event.citizen_id
    base = double if double is not None else new_double(cid, rules)
    if base["citizen_id"] != cid:
        raise ValueError(f"event for {cid!r} folded into the double of {base['citizen_id']!r}")
    at = as_datetime(event.record["occurred_at"])
    hits = rules.hits(event.kind, event.record)
    rule_hits = dict(base["rule_hits"])
    for rule in hits:
        rule_hits[rule.id] = rule_hits.get(rule.id, 0) + 1
    count_field = f"{event.kind}_count"
    first, last = base["first_seen"], base["last_seen"]
    return {
        **base,
        "version": base["version"] + 1,
        "score": base["score"] + sum(r.delta for r in hits),
        count_field: base[count_field] + 1,
        "first_seen": at if first is None or at < first else first,
        "last_seen": at if last is None or at > last else last,
        "rule_hits": rule_hits,
    }


def fold_all(events: Iterable[Event], rules: Rulebook | None = None) -> dict[str, Double]:
    """The offline oracle: every citizen's double from a sequence of events."""
    rules = rules or default_rules()
    doubles: dict[str, Double] = {}
    for event in events:
        cid = event.citizen_id
        doubles[cid] = fold(doubles.get(cid), event, rules)
    return doubles
