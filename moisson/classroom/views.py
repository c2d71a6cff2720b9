"""What a phone and the projector are sent: plain JSON built from the room, the
harvester's latest doubles and ledger, and the rules (pure: no web, no Kafka)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from moisson.classroom.clock import SessionClock
from moisson.classroom.room import Room, Student
from processors.core.scoring import Rulebook
from producers.city import SensorEvent
from producers.metro import STATIONS

#: The class histogram's bin width, in points.
BIN = 50


def entry_view(entry: Mapping[str, Any], rules: Rulebook, clock: SessionClock) -> dict[str, Any]:
    """One ledger entry as the citizen page shows it: the rule, its explanation and the
    practice it mirrors."""
    rule = rules.rule(entry["rule_id"])
    at = entry["occurred_at"]
    return {
        "at": clock.label(int(at.timestamp() * 1000)) if isinstance(at, datetime) else str(at),
        "rule": entry["rule_id"],
        "delta": entry["delta"],
        "explanation": rule.explanation,
        "mirrors": rule.mirrors,
        "source": rule.source,
    }


def student_view(
    student: Student,
    double: Mapping[str, Any] | None,
    ledger: Iterable[Mapping[str, Any]],
    sanctioned: bool,
    rules: Rulebook,
    clock: SessionClock,
    ended: bool,
) -> dict[str, Any]:
    """A phone's live state. ``sanctioned`` is what the gates know (the ``sanctions``
    topic), so "blacklisted" on the phone means the next metro tap is refused."""
    base = rules.base_score
    return {
        "id": student.id,
        "nickname": student.nickname,
        "station": STATIONS[student.citizen.home_district][0],
        "clock": clock.label(),
        "sent": student.sent,
        "version": double["version"] if double else 0,
        "score": double["score"] if double else base,
        "tier": double["tier"] if double else rules.tier(base),
        "blacklisted": sanctioned,
        "threshold": rules.blacklist_threshold,
        "ledger": [entry_view(e, rules, clock) for e in reversed(list(ledger))],
        "ended": ended,
    }


def histogram(scores: Iterable[int], low: int, high: int) -> list[dict[str, int]]:
    """Counts per ``BIN``-point bin from ``low`` to ``high`` (the top score in the last bin)."""
    counts = Counter(min(max(s, low), high - 1) // BIN * BIN for s in scores)
    return [{"from": b, "count": counts.get(b, 0)} for b in range(low, high, BIN)]


def why_below(ledger: Iterable[Mapping[str, Any]], rules: Rulebook) -> list[str]:
    """The rules that took points, most points first: why a student fell under the line."""
    lost: Counter[str] = Counter()
    for e in ledger:
        if e["delta"] < 0:
            lost[e["rule_id"]] += -e["delta"]
    return [f"{rules.rule(r).explanation} ({-n:+d})" for r, n in lost.most_common(3)]


def projector_view(
    room: Room,
    doubles: Mapping[str, Mapping[str, Any]],
    ledgers: Mapping[str, Iterable[Mapping[str, Any]]],
    sanctioned: set[str],
    rules: Rulebook,
    clock: SessionClock,
    feed: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """The room on the projector: who joined, the class histogram with the line, the
    live feed of taps, and who fell under the line and why."""
    students: list[dict[str, Any]] = []
    for s in list(room.students.values()):
        d = doubles.get(s.id)
        score = d["score"] if d else rules.base_score
        students.append(
            {
                "id": s.id,
                "nickname": s.nickname,
                "score": score,
                "tier": d["tier"] if d else rules.tier(score),
                "version": d["version"] if d else 0,
                "blacklisted": s.id in sanctioned,
            }
        )
    below = [
        {**st, "why": why_below(ledgers.get(st["id"], ()), rules)}
        for st in sorted(students, key=lambda st: st["score"])
        if st["score"] < rules.blacklist_threshold or st["blacklisted"]
    ]
    return {
        "code": room.code,
        "clock": clock.label(),
        "ended": room.ended,
        "threshold": rules.blacklist_threshold,
        "students": students,
        "histogram": histogram(
            (st["score"] for st in students), rules.score_min, rules.score_max + 1
        ),
        "below": below,
        "feed": list(feed)[-30:],
    }


def tap_detail(event: SensorEvent, companion: str) -> str:
    """One line of the projector's feed about a tap (``companion``: who they walked with)."""
    r = event.record
    if event.kind == "metro":
        return f"gate at {r['station']}"
    if event.kind == "payment":
        return f"{r['category'].lower()} at {r['merchant']}"
    if event.kind == "book":
        return f"{r['title']} ({r['category'].lower()})"
    if companion:
        return f"with {companion} at {r['location']}"
    return f"{r['behaviour'].lower().replace('_', ' ')} at {r['location']}"
