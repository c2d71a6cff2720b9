"""Where each source partition stands, seen over time: when to seek back to a hole,
when to give a hole up as missing, when a partition is stalled, what to commit, and
the lag. Pure (the clock is passed in), so the decisions are tested without a broker."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from processors.core.gate import Position, Source

HoleAction = Literal["seek", "wait", "give-up"]


@dataclass
class Progress:
    """One worker's view of its source partitions' positions, across batches (the
    agent tells it what happened through its methods; it decides what to do next)."""

    seek_every_s: float = 1.0  # the least time between two seeks of one partition
    stall_s: float = 15.0  # unmoved and undelivered this long below the high-water: stalled
    give_up_after: int = 5  # seeks answered by the same offset before a range is dead-lettered
    lag_log_s: float = 30.0
    #: source -> (position, when it last changed)
    since: dict[Source, tuple[int, float]] = field(default_factory=dict)
    #: source -> (the hole's expected offset, the offset found there, seeks made that
    #: found the same one, when the last was)
    seeks: dict[Source, tuple[int, int, int, float]] = field(default_factory=dict)
    #: source -> the offset it waits at for the schema registry (no seek there counts
    #: towards giving a range up: nothing is missing)
    waiting: dict[Source, int] = field(default_factory=dict)
    #: source -> when a batch last held one of its records (at any offset)
    delivered: dict[Source, float] = field(default_factory=dict)
    committed: dict[Source, int] = field(default_factory=dict)
    lag: dict[Source, int] = field(default_factory=dict)
    #: source -> where the last batch planned left it (its position may not be written
    #: yet: the next batch is planned while the previous one is being acknowledged)
    planned: dict[Source, Position] = field(default_factory=dict)
    #: source -> the watermark last written to its position, not yet acknowledged
    written: dict[Source, datetime | None] = field(default_factory=dict)
    #: source -> the watermark its stored position is known to hold durably: a crash
    #: replays from there at the earliest, so eviction may rely on it (and no further)
    durable: dict[Source, datetime | None] = field(default_factory=dict)
    _logged: tuple[float, int] = (float("-inf"), 0)

    def stands(self, src: Source, stored: Callable[[Source], Position]) -> Position:
        """Where ``src`` stands: as the last batch planned left it (it may not be written
        yet), else as ``stored``. The first read of a source since it was assigned is a
        recovered, durable value: it seeds the durable watermark eviction may rely on."""
        planned = self.planned.get(src)
        if planned is not None and src in self.durable:
            return planned  # already seeded: the store need not be read again
        position = stored(src)
        self.durable.setdefault(src, position.watermark)
        return planned or position

    def durable_watermark(
        self, src: Source, stored: Callable[[Source], Position]
    ) -> datetime | None:
        """The watermark ``src``'s stored position holds durably (read once)."""
        if src not in self.durable:
            self.durable[src] = stored(src).watermark
        return self.durable[src]

    def planned_to(self, positions: Mapping[Source, tuple[Position, int]]) -> None:
        """A batch was planned: the next one is planned from where it left each source."""
        for src, (stands, _) in positions.items():
            self.planned[src] = stands

    def replan(self) -> None:
        """Batches in flight write no position now (a revocation began): plan from the
        store again."""
        self.planned.clear()

    def wrote(self, src: Source, stands: Position) -> None:
        """``src``'s position was written, not yet acknowledged."""
        self.written[src] = stands.watermark

    def delivered_at(self, sources: Iterable[Source], now: float) -> None:
        """A batch held records of ``sources``."""
        for src in sources:
            self.delivered[src] = now

    def committed_to(self, src: Source, position: int) -> None:
        """``position`` was committed to the consumer group for ``src``."""
        self.committed[src] = position

    def skipped_to(self, src: Source, stands: Position, now: float) -> None:
        """A missing range was given up: ``src`` goes on from ``stands`` (unless a batch
        already planned past it)."""
        if self.planned.get(src, stands).next <= stands.next:
            self.planned[src] = stands
        self.moved(src, stands.next, now)

    def unflushed(self) -> dict[Source, datetime | None]:
        """The watermarks written and not yet acknowledged: a snapshot to hand to
        :meth:`flushed` once a flush that began after it has landed."""
        return dict(self.written)

    def flushed(self, written: dict[Source, datetime | None]) -> None:
        """The positions ``written`` (a snapshot taken before a flush) have landed."""
        self.durable.update(written)
        for src, wm in written.items():
            # Two flushes may land with the same snapshot (the timer's and a batch's), and
            # a partition that saw no valid event yet has the watermark None.
            if src in self.written and self.written[src] == wm:
                del self.written[src]

    def moved(self, src: Source, position: int, now: float) -> None:
        held = self.since.get(src)
        if held is None or held[0] != position:
            self.since[src] = (position, now)
        hole = self.seeks.get(src)
        if hole is not None and position > hole[0]:
            del self.seeks[src]  # the seek worked
        if self.waiting.get(src, position) < position:
            del self.waiting[src]  # the registry answered

    def _may_seek(self, src: Source, now: float) -> bool:
        held = self.seeks.get(src)
        return held is None or now - held[3] >= self.seek_every_s

    def on_hole(self, src: Source, expected: int, found: int, now: float) -> HoleAction:
        """A batch found offset ``found`` where ``expected`` was due: seek back, wait for
        a seek made, or give the range up.

        Records fetched before a seek still arrive after it, further on each time; only
        a seek answered again and again by the *same* offset shows a real gap (compaction,
        a transaction marker, retention), so only those count towards giving up.
        """
        held = self.seeks.get(src)
        if held is not None and held[0] == expected and not self._may_seek(src, now):
            return "wait"
        if self.waiting.get(src) == expected:  # records fetched before a wait's seek
            self.seeks[src] = (expected, found, 0, now)
            return "seek"
        same = held is not None and held[0] == expected and held[1] == found
        count = held[2] if same and held is not None else 0
        if count >= self.give_up_after:
            del self.seeks[src]
            return "give-up"
        self.seeks[src] = (expected, found, count + 1, now)
        return "seek"

    def on_wait(self, src: Source, offset: int, now: float) -> bool:
        """``src`` cannot go past ``offset`` yet (the registry is unreachable): whether
        to seek back there now (at most every ``seek_every_s``)."""
        self.waiting[src] = offset
        held = self.seeks.get(src)
        if held is not None and held[0] == offset and not self._may_seek(src, now):
            return False
        self.seeks[src] = (offset, -1, 0, now)
        return True

    def stalled(self, src: Source, position: int, highwater: int | None, now: float) -> bool:
        """Whether ``src`` should be sought back to ``position`` (and book the seek)."""
        self.moved(src, position, now)
        if highwater is None or position >= highwater:
            return False
        held = self.seeks.get(src)
        if now - self.since[src][1] < self.stall_s or (held and now - held[3] < self.stall_s):
            return False
        if now - self.delivered.get(src, float("-inf")) < self.stall_s:
            return False  # records are arriving: a hole is handled when seen, a backlog drains
        if held is not None and held[0] == position:
            self.seeks[src] = (*held[:3], now)
        else:
            self.seeks[src] = (position, -1, 0, now)
        return True

    def seen_highwater(self, src: Source, position: int, highwater: int | None) -> None:
        if highwater is not None:
            self.lag[src] = max(0, highwater - position)

    def to_commit(self, src: Source, position: int) -> bool:
        return position > self.committed.get(src, -1)

    def forget(self, sources: set[Source]) -> None:
        """Drop what is known of partitions this worker no longer owns."""
        tables = (
            self.since,
            self.seeks,
            self.waiting,
            self.delivered,
            self.committed,
            self.lag,
            self.written,
            self.durable,
            self.planned,
        )
        for table in tables:
            for src in sources & set(table):
                del table[src]

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())

    def maybe_log_lag(self, log: logging.Logger, now: float) -> None:
        """Every ``lag_log_s`` while behind, and once when caught up."""
        last, was = self._logged
        total = self.total_lag
        if (total and now - last >= self.lag_log_s) or (was and not total):
            behind = ", ".join(f"{t}[{p}] {n}" for (t, p), n in sorted(self.lag.items()) if n)
            log.info("harvester lag: %d events%s", total, f" ({behind})" if behind else "")
            self._logged = (now, total)
