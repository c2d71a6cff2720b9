"""Correlation marks, folded in one at a time with time-range lookups (pure).

A correlation is a pure function of the *set* of a double's marks
(:func:`processors.core.fold.correlation_entries` states it as a rescan, and the tests hold
this module to it). Rescanning on every event costs the square of the marks held, so
one citizen's burst of marked events could block the worker's event loop. Here each new
mark only looks at the marks a window either side of it, found by bisection in the
sorted list, as Kafka Streams' window stores do: the cost of an event grows with the log
of the marks held, plus the firings it causes (each trigger fires once in its life).

Both correlation types are monotone: a new mark never un-fires a trigger, so what has
fired is what the ledger already holds and only the new firings need finding.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from processors.core.scoring import Correlation, Rulebook

Mark = dict[str, Any]


def mark_key(m: Mapping[str, Any]) -> tuple[datetime, str, str]:
    """The order marks are held in: event time, then event id, then kind."""
    return (m["occurred_at"], m["event_id"], m["kind"])


def add_marks(
    marks: Sequence[Mark], new: Sequence[Mark], rules: Rulebook, since: datetime | None
) -> tuple[list[Mark], list[dict[str, Any]]]:
    """``marks`` (sorted) with ``new`` added, and the correlation entries that became
    true (triggers at or after ``since``: older ones are checkpointed), in the order
    :func:`processors.core.fold.correlation_entries` lists them."""
    out = list(marks)
    fired: list[tuple[int, tuple[datetime, str, str], Correlation, Mark]] = []
    for m in sorted(new, key=mark_key):
        insort(out, m, key=mark_key)
        for i, c in enumerate(rules.correlations):
            for t in _newly_fired(out, m, c):
                if since is None or t["occurred_at"] >= since:
                    fired.append((i, mark_key(t), c, t))
    fired.sort(key=lambda f: (f[0], f[1]))
    entries = [
        {
            "occurred_at": t["occurred_at"],
            "event_id": t["event_id"],
            "rule_id": c.id,
            "delta": c.delta,
        }
        for _, _, c, t in fired
    ]
    return out, entries


def _of_kind(marks: Sequence[Mark], kind: str) -> list[Mark]:
    return [m for m in marks if m["kind"] == kind]


def _times(marks: Sequence[Mark]) -> list[datetime]:
    return [m["occurred_at"] for m in marks]


def _newly_fired(marks: Sequence[Mark], m: Mark, c: Correlation) -> list[Mark]:
    """The triggers of ``c`` that fire now that ``m`` is in ``marks`` and did not before.

    Only marks within two windows of ``m`` can matter (a trigger within one window of
    it, and that trigger's own window), so only those are looked at."""
    window = timedelta(milliseconds=c.window_ms)
    if c.type == "within":
        if m["kind"] not in (c.trigger, c.with_):
            return []
        return _within(_near(marks, m, 2 * window), m, c, window)
    if m["kind"] != c.trigger:
        return []
    return _repeated(_near(marks, m, window), m, c, window)


def _near(marks: Sequence[Mark], m: Mark, reach: timedelta) -> Sequence[Mark]:
    """The marks within ``reach`` of ``m`` in time (a slice of the sorted list)."""
    x = m["occurred_at"]
    lo = bisect_left(marks, x - reach, key=_at)
    hi = bisect_right(marks, x + reach, key=_at)
    return marks[lo:hi]


def _at(m: Mark) -> datetime:
    at: datetime = m["occurred_at"]
    return at


def _within(marks: Sequence[Mark], m: Mark, c: Correlation, window: timedelta) -> list[Mark]:
    x = m["occurred_at"]
    out: list[Mark] = []
    if m["kind"] == c.with_ and c.with_ != c.trigger:
        # Triggers within the window of m that had no other `with` mark within theirs:
        # the nearest others are m's neighbours in time, p before and q after (one
        # beyond two windows is too far to matter, and outside ``marks``).
        withs = _of_kind(marks, c.with_)
        at = bisect_left(withs, mark_key(m), key=mark_key)
        p = withs[at - 1]["occurred_at"] if at > 0 else None
        q = withs[at + 1]["occurred_at"] if at + 1 < len(withs) else None
        triggers = _of_kind(marks, c.trigger)
        times = _times(triggers)
        lo = bisect_left(times, x - window)  # within the window of m, and farther
        hi = bisect_right(times, x + window)  # than the window from p and from q
        if p is not None:
            lo = max(lo, bisect_right(times, p + window))
        if q is not None:
            hi = min(hi, bisect_left(times, q - window))
        out.extend(triggers[lo:hi])
    if m["kind"] == c.trigger:
        times = _times(_of_kind(marks, c.with_))
        lo = bisect_left(times, x - window)
        if lo < len(times) and times[lo] <= x + window:
            out.append(m)
    return out


def _repeated(marks: Sequence[Mark], m: Mark, c: Correlation, window: timedelta) -> list[Mark]:
    triggers = _of_kind(marks, c.trigger)
    times = _times(triggers)
    at = bisect_left(triggers, mark_key(m), key=mark_key)

    def count(j: int) -> int:  # this one and those before it within the window
        return j - bisect_left(times, times[j] - window) + 1

    out = [m] if count(at) >= c.at_least else []
    # A later trigger gains m in its window; it fires now only if it had one too few,
    # and every trigger between m and it is in its window too: so only the next
    # at_least - 1 can.
    for j in range(at + 1, min(len(triggers), at + c.at_least)):
        if times[j] - times[at] > window:
            break
        if count(j) == c.at_least:
            out.append(triggers[j])
    return out
