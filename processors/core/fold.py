"""The pure fold ``(double, event) -> double``.

This is the one definition of what the harvester concludes about a citizen. The
faust agent and the offline oracle both call it, so they cannot disagree. It imports
no faust, Kafka or SQLAlchemy (an import-linter contract holds it to that).

**Order independence.** Every field of a double is a function of the *set* of events
applied, never of the order in which they arrived (the four topics interleave
differently with every partition and worker count):

- counts, aggregates and first/last seen are commutative (sums, min, max);
- the score is the ledger walked in event time from the base, clamped to the rules'
  scale at every step (so it depends on the set of entries, not their arrival);
- the ledger (every score change, and the refusals and logged purchases the rules
  mark ``record = true``) and the correlation marks are kept sorted in event time, keyed by
  (event, rule), and only ever grow: a correlation that becomes true when a late event
  arrives adds its entry then, attributed to the triggering event;
- the blacklist periods are recomputed from the ledger walked in event time, so a late
  event lands where it happened, not where it arrived;
- a re-delivered event (same ``event_id``) leaves the double unchanged.

**Bounded state** (README: Bounded state and lateness). ``processors.core.horizon.evict``
drops what no event accepted from now on can change: the event ids, ledger entries and
marks older than an eviction line, folded into a checkpoint (the score walked up to the
line, and the blacklist period open there). The caller derives the line from the
sources' watermarks and the allowed lateness (``processors.core.horizon.Horizon``), so
eviction never changes a result: folding with or without it gives the same profile,
ledger and periods.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from processors.core.held import MS, event_id_bytes, held_index, hold, ms
from processors.core.marks import add_marks
from processors.core.scoring import Rulebook, load_rules

Double = dict[str, Any]
AGGREGATES = {
    "metro": ("places", "station"),
    "payment": ("purchases", "category"),
    "book": ("books", "title"),
    "camera": ("sightings", "behaviour"),
}
REFUSED = {"DENIED", "REFUSED"}


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded sensor event and the kind of sensor that produced it."""

    kind: str
    record: Mapping[str, Any]

    @property
    def citizen_id(self) -> str:
        return str(self.record["citizen_id"])

    @property
    def event_id(self) -> str:
        return str(self.record["event_id"])


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
        "base_score": rules.base_score,
        "score": rules.base_score,
        "tier": rules.tier(rules.base_score),
        "blacklisted": False,
        "metro_count": 0,
        "payment_count": 0,
        "book_count": 0,
        "camera_count": 0,
        "denied_count": 0,
        "first_seen": None,
        "last_seen": None,
        "places": {},
        "purchases": {},
        "books": {},
        "sightings": {},
        "associates": {},
        "rule_hits": {},
        "ledger": [],
        "marks": [],
        "blacklist": [],
        "recent_events": b"",
        "checkpoint": None,
    }


def folded_keys(event: Event) -> dict[str, list[str]]:
    """The keys ``event`` counts in each of its double's maps (a sensor chooses them)."""
    rec = event.record
    aggregate, key_field = AGGREGATES[event.kind]
    if event.kind != "camera":
        return {aggregate: [str(rec[key_field])]}
    return {
        aggregate: [str(rec[key_field])],
        "places": [str(rec["location"])],
        "associates": [str(c) for c in rec.get("companions", ())],
    }


def _bump(counts: Mapping[str, int], *keys: str) -> dict[str, int]:
    out = dict(counts)
    for key in keys:
        out[key] = out.get(key, 0) + 1
    return out


def _entry_key(e: Mapping[str, Any]) -> tuple[datetime, str, str]:
    return (e["occurred_at"], e["event_id"], e["rule_id"])


def _holds(ledger: list[dict[str, Any]], entry: Mapping[str, Any]) -> bool:
    """Whether the sorted ``ledger`` already holds ``entry`` (same event and rule)."""
    key = _entry_key(entry)
    i = bisect_left(ledger, key, key=_entry_key)
    return i < len(ledger) and _entry_key(ledger[i]) == key


def _extend(
    base: Double,
    new_entries: list[dict[str, Any]],
    rules: Rulebook,
    start_score: int,
    start_open: Mapping[str, Any] | None,
) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
    """The ledger with ``new_entries`` in event-time order, the score and the periods.

    Entries after the whole held ledger (the usual, in-order case) continue the walk
    from where the double stands; a late one re-walks from the checkpoint.
    """
    old = base["ledger"]
    fresh = sorted(new_entries, key=_entry_key)
    if not old or _entry_key(old[-1]) < _entry_key(fresh[0]):
        periods = base["blacklist"]
        still_open = periods[-1] if periods and periods[-1]["lifted_at"] is None else None
        score, tail = walk(fresh, base["score"], rules, still_open)
        kept = periods[:-1] if still_open is not None else periods
        return [*old, *fresh], score, [*kept, *tail]
    ledger = list(old)
    for e in fresh:
        insort(ledger, e, key=_entry_key)
    score, periods = walk(ledger, start_score, rules, start_open)
    return ledger, score, periods


def correlation_entries(
    marks: list[dict[str, Any]], rules: Rulebook, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Every correlation firing the marks imply (a pure function of the set of marks);
    with ``since``, only for triggers at or after it (older ones are checkpointed)."""
    entries: list[dict[str, Any]] = []
    for c in rules.correlations:
        triggers = [m for m in marks if m["kind"] == c.trigger]
        if c.type == "within":
            others = [m["occurred_at"] for m in marks if m["kind"] == c.with_]
            fired = [
                t
                for t in triggers
                if any(
                    abs((t["occurred_at"] - w).total_seconds()) * 1000 <= c.window_ms
                    for w in others
                )
            ]
        else:  # repeated: this one and enough before it, within the window
            fired = [
                t
                for j, t in enumerate(triggers)
                if sum(
                    1
                    for m in triggers[: j + 1]
                    if (t["occurred_at"] - m["occurred_at"]).total_seconds() * 1000 <= c.window_ms
                )
                >= c.at_least
            ]
        entries.extend(
            {
                "occurred_at": t["occurred_at"],
                "event_id": t["event_id"],
                "rule_id": c.id,
                "delta": c.delta,
            }
            for t in fired
            if since is None or t["occurred_at"] >= since
        )
    return entries


def walk(
    ledger: list[dict[str, Any]],
    start: int,
    rules: Rulebook,
    open_at_start: Mapping[str, Any] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Walk the score in event time, clamped to the scale at every step: the score at
    the end, and the blacklist periods (under the threshold enters, the recovery line
    lifts).

    The walk starts at ``start`` (the base, or a checkpoint's score), with
    ``open_at_start`` the period open there, if any. The clamp is why the score is a
    walk and not a sum: it is still a function of the set of entries, which the ledger
    keeps sorted in event time.
    """
    periods: list[dict[str, Any]] = [dict(open_at_start)] if open_at_start else []
    score = start
    low, high = rules.score_min, rules.score_max
    enter, leave = rules.blacklist_threshold, rules.recovery_threshold
    for e in ledger:
        score = min(high, max(low, score + e["delta"]))
        open_ = bool(periods) and periods[-1]["lifted_at"] is None
        if not open_ and score < enter:
            periods.append(
                {
                    "entered_at": e["occurred_at"],
                    "lifted_at": None,
                    "score_at_entry": score,
                    "event_id": e["event_id"],
                }
            )
        elif open_ and score >= leave:
            periods[-1] = {**periods[-1], "lifted_at": e["occurred_at"]}
    return score, periods


def fold(double: Double | None, event: Event, rules: Rulebook | None = None) -> Double:
    """Return a new double with ``event`` merged in; ``double`` is left untouched.

    A re-delivered event returns ``double`` itself (same object, same version).
    """
    return fold_entries(double, event, rules)[0]


def checkpoint_start(d: Double) -> tuple[int, Mapping[str, Any] | None, datetime | None]:
    cp = d.get("checkpoint")
    if cp is None:
        return d["base_score"], None, None
    return cp["score"], cp["open"], cp["at"]


def fold_entries(
    double: Double | None, event: Event, rules: Rulebook | None = None
) -> tuple[Double, list[dict[str, Any]]]:
    """:func:`fold`, plus the ledger entries the event added (what the ledger topic gets)."""
    rules = rules or default_rules()
    cid = event.citizen_id
    base = double if double is not None else new_double(cid, rules)
    if base["citizen_id"] != cid:
        raise ValueError(f"event for {cid!r} folded into the double of {base['citizen_id']!r}")
    eid = event.event_id
    raw = event.record["event_id"]  # a UUID when decoded from Avro: no second parse
    ident = raw.bytes if isinstance(raw, uuid.UUID) else event_id_bytes(eid)
    held = base["recent_events"]
    if held_index(held, ident) != -1:
        return base, []
    rec = event.record
    at = as_datetime(rec["occurred_at"])
    d = dict(base)
    d["recent_events"] = hold(held, MS.pack(ms(at)) + ident)
    d["version"] = base["version"] + 1
    d[f"{event.kind}_count"] = base[f"{event.kind}_count"] + 1
    d["first_seen"] = at if base["first_seen"] is None else min(base["first_seen"], at)
    d["last_seen"] = at if base["last_seen"] is None else max(base["last_seen"], at)
    for aggregate, keys in folded_keys(event).items():
        d[aggregate] = _bump(base[aggregate], *keys)
    if rec.get("outcome") in REFUSED:
        d["denied_count"] = base["denied_count"] + 1

    hits = rules.hits(event.kind, rec)
    new_entries: list[dict[str, Any]] = [
        {"occurred_at": at, "event_id": eid, "rule_id": r.id, "delta": r.delta}
        for r in hits
        if r.delta or r.record
    ]
    rule_hits = _bump(base["rule_hits"], *(r.id for r in hits))
    start_score, start_open, since = checkpoint_start(base)

    mark_kinds = rules.marks_for(event.kind, rec)
    if mark_kinds:
        new_marks = [{"kind": k, "occurred_at": at, "event_id": eid} for k in mark_kinds]
        d["marks"], fired = add_marks(base["marks"], new_marks, rules, since)
        for e in fired:
            if not _holds(base["ledger"], e):
                new_entries.append(e)
                rule_hits = _bump(rule_hits, e["rule_id"])
    d["rule_hits"] = rule_hits

    if new_entries:
        if since is not None and min(e["occurred_at"] for e in new_entries) < since:
            raise ValueError(  # the caller's horizon let in an event it had evicted for
                f"{cid}: an entry before the checkpoint at {since}; the eviction line "
                "must stay below every accepted event's horizon"
            )
        d["ledger"], d["score"], d["blacklist"] = _extend(
            base, new_entries, rules, start_score, start_open
        )
        d["blacklisted"] = bool(d["blacklist"] and d["blacklist"][-1]["lifted_at"] is None)
        d["tier"] = rules.tier(d["score"])
    return d, new_entries


def fold_all(events: Iterable[Event], rules: Rulebook | None = None) -> dict[str, Double]:
    """The offline oracle: every citizen's double from a collection of events."""
    rules = rules or default_rules()
    doubles: dict[str, Double] = {}
    for event in events:
        cid = event.citizen_id
        doubles[cid] = fold(doubles.get(cid), event, rules)
    return doubles


def explained_ledger(double: Double, rules: Rulebook | None = None) -> list[dict[str, Any]]:
    """The held ledger with the score before and after each entry and the rule's
    explanation (from the checkpoint's score when part of it was evicted)."""
    rules = rules or default_rules()
    score = checkpoint_start(double)[0]
    out = []
    for e in double["ledger"]:
        rule = rules.rule(e["rule_id"])
        after = rules.clamp(score + e["delta"])
        out.append(
            {
                **e,
                "score_before": score,
                "score_after": after,
                "explanation": rule.explanation,
                "mirrors": rule.mirrors,
            }
        )
        score = after
    return out
