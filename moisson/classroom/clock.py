"""The session's simulated clock: the city's time, running at ``speed`` from 07:00 on
day 1, jumped to the next morning when the instructor says so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from producers.base import HOUR
from producers.city import DAY_MS, EPOCH_MS

#: Where each simulated day of the room starts, in hours after midnight (Beijing time).
MORNING_H = 7


class SessionClock:
    """Simulated milliseconds since the epoch, from the real clock ``now`` (seconds)."""

    def __init__(
        self,
        speed: float,
        start_ms: int = EPOCH_MS + MORNING_H * HOUR,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("the session clock needs a positive speed")
        self.speed, self._now = speed, now
        self._origin_real, self._origin_ms = now(), start_ms
        self._last = start_ms - 1
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._origin_ms + int((self._now() - self._origin_real) * 1000 * self.speed)

    def stamp(self) -> int:
        """A moment for one tap: now, and always after the previous stamp, so two taps
        of a student never share a time (their order is the order they were made)."""
        with self._lock:
            self._last = max(self.now_ms(), self._last + 1)
            return self._last

    def day(self) -> int:
        """The simulated day, counted from 0."""
        return (self.now_ms() - EPOCH_MS) // DAY_MS

    def next_day(self) -> int:
        """Jump to 07:00 of the next day (the crowd then lives the rest of this one at
        once); the new day."""
        with self._lock:
            target = EPOCH_MS + (self.day() + 1) * DAY_MS + MORNING_H * HOUR
            self._origin_real, self._origin_ms = self._now(), target
            return self.day()

    def label(self, at_ms: int | None = None) -> str:
        """``Day 2, 14:05`` for a moment of the session (now by default)."""
        at = self.now_ms() if at_ms is None else at_ms
        since = at - EPOCH_MS
        minutes = since % DAY_MS // 60_000
        return f"Day {since // DAY_MS + 1}, {minutes // 60:02d}:{minutes % 60:02d}"
