"""How far back an accepted event can reach, and what a double may forget (pure).

See ``processors/core/fold.py`` for the checkpoint these fold into, and the README's
"Bounded state and lateness" for why eviction never changes a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.core.fold import Double, checkpoint_start, default_rules, walk
from processors.core.held import HELD, MS, first_at, ms
from processors.core.scoring import Rulebook


@dataclass(frozen=True, slots=True)
class Horizon:
    """How far back in event time an accepted event can reach, and so what may go.

    An event later than ``lateness`` behind its source partition's watermark is
    refused (too late). Every other event is at or after ``floor - lateness``, where
    ``floor`` is the lowest watermark of the co-partitioned sources, and it can touch
    correlations ``window`` either side of it, whose own windows reach ``window``
    further. So, below ``floor``:

    - event ids older than ``lateness`` can never be seen again (a duplicate is too late);
    - ledger entries older than ``lateness + window`` can never be added, or passed
      by a new entry in the event-time walk: they fold into the checkpoint;
    - marks older than ``lateness + 2 * window`` can never be in a window again.
    """

    lateness: timedelta
    window: timedelta
    step: timedelta = timedelta(hours=6)  # evict at most this often per double

    @classmethod
    def of(cls, rules: Rulebook, lateness_s: float | None = None) -> Horizon:
        """The horizon of ``rules``; the lateness defaults to their longest window."""
        window = timedelta(milliseconds=max((c.window_ms for c in rules.correlations), default=0))
        lateness = window if lateness_s is None else timedelta(seconds=lateness_s)
        return cls(lateness=lateness, window=window)

    def line(self, floor: datetime) -> datetime:
        """The checkpoint line for a floor watermark."""
        return floor - self.lateness - self.window


def evict(
    double: Double, floor: datetime, horizon: Horizon, rules: Rulebook | None = None
) -> Double:
    """The double without what no event accepted from now on can change (see
    :class:`Horizon`); ``double`` itself when the line has not moved a ``step``."""
    rules = rules or default_rules()
    line = horizon.line(floor)
    cp = double.get("checkpoint")
    if cp is not None and line - cp["at"] < horizon.step:
        return double
    held = double["recent_events"]
    id_line = ms(line + horizon.window)
    keep_from = MS.pack(id_line)
    marks, ledger = double["marks"], double["ledger"]
    if (
        (not held or held[:8] >= keep_from)
        and (not marks or marks[0]["occurred_at"] >= line - horizon.window)
        and (not ledger or ledger[0]["occurred_at"] >= line)
    ):
        return double  # nothing is old enough yet (a sealed period ends on an old entry)
    d = dict(double)
    d["recent_events"] = held[first_at(held, id_line) * HELD :]
    d["marks"] = [m for m in double["marks"] if m["occurred_at"] >= line - horizon.window]
    gone = [e for e in double["ledger"] if e["occurred_at"] < line]
    score, open_, _ = checkpoint_start(double)
    last_lifted = cp["last_lifted"] if cp is not None else None
    for p in double["blacklist"]:
        if p["lifted_at"] is not None and p["lifted_at"] < line:
            last_lifted = p["lifted_at"]
            open_ = None
        elif p["entered_at"] < line:
            open_ = {**p, "lifted_at": None}
    d["ledger"] = double["ledger"][len(gone) :]
    d["checkpoint"] = {
        "at": line,
        "score": walk(gone, score, rules)[0],
        "open": open_,
        "last_lifted": last_lifted,
    }
    d["blacklist"] = walk(d["ledger"], d["checkpoint"]["score"], rules, open_)[1]
    return d
