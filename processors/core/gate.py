"""The offset gate: which of a batch's messages may be applied, and where each source
partition stands after them. Pure (no faust, Kafka or SQLAlchemy: an import-linter
contract).

Correctness does not rest on faust's commits (faust 0.15.3 can commit over records it
never delivered after a rebalance: ``../shared/faust-rebalance-lab``). Each source
partition's *position*, the next offset to apply, is kept in the processor's state and
messages pass the gate strictly in offset order:

- below the position: a re-delivery, already applied and flushed: skipped;
- at the position: admitted, and the position moves on once it is taken;
- above the position: a hole (faust dropped records): nothing more of that partition
  passes in this batch, and the agent seeks back to the position;
- of a partition not assigned to this worker any more: refused (another worker owns it);
- after a message that must wait (the schema registry cannot be asked about it): nothing
  more of that partition passes until it can.

Each position also keeps its partition's *watermark*, the latest event time taken
there, which depends only on that partition's order: an event more than the allowed
lateness behind it is too late (:meth:`OffsetGate.not_before`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

#: A source partition: (topic, partition).
Source = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a source partition stands: the next offset to apply, and its watermark."""

    next: int = 0
    watermark: datetime | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One sensor message as the planner sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def source(self) -> Source:
        return (self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class Hole:
    """Offsets ``expected`` up to ``found`` (excluded) of a partition were not delivered;
    ``index`` is the message found at ``found``."""

    expected: int
    found: int
    index: int


class OffsetGate:
    """One batch's delivery bookkeeping: what passed, what waits, where sources stand."""

    def __init__(
        self,
        stored: Callable[[Source], Position],
        assigned: Collection[Source] | None = None,
        lateness: timedelta | None = None,
    ) -> None:
        """``stored(source)`` is where a source stood before the batch, ``assigned`` the
        sources this worker owns (None: all), ``lateness`` the allowed lateness (None:
        no event is too late)."""
        self.stored, self.assigned, self.lateness = stored, assigned, lateness
        #: source -> (where it now stands, index of the last message taken there)
        self.positions: dict[Source, tuple[Position, int]] = {}
        self.holes: dict[Source, Hole] = {}
        #: source -> the offset it waits at (no seek there counts as missing anything)
        self.waiting: dict[Source, int] = {}
        self.seen: set[Source] = set()  # sources delivered in this batch
        self.applied = 0  # messages taken in offset order (folded or rejected)
        self.redelivered = 0  # below the position: skipped
        self.unassigned = 0  # of partitions this worker no longer owns: refused
        self._stands: dict[Source, Position] = {}

    def admit(self, index: int, msg: Incoming) -> bool:
        """Whether message ``index`` is the next of its partition (else it is counted as
        unassigned, re-delivered, a hole, or left behind a hole or a wait)."""
        src = msg.source
        if self.assigned is not None and src not in self.assigned:
            self.unassigned += 1
            return False
        self.seen.add(src)
        if src in self.holes or src in self.waiting:
            return False  # nothing after a hole or a wait passes until a seek re-delivers it
        at = self.stands(src).next
        if msg.offset < at:
            self.redelivered += 1
            return False
        if msg.offset > at:
            self.holes[src] = Hole(at, msg.offset, index)
            return False
        return True

    def stands(self, src: Source) -> Position:
        """Where ``src`` stands now: as this batch left it, or as stored."""
        held = self._stands.get(src)
        if held is None:
            held = self._stands[src] = self.stored(src)
        return held

    def not_before(self, src: Source) -> datetime | None:
        """The earliest event time ``src`` still accepts: its watermark minus the allowed
        lateness (None: anything)."""
        mark = self.stands(src).watermark
        return mark - self.lateness if mark is not None and self.lateness is not None else None

    def wait(self, msg: Incoming) -> None:
        """``msg`` cannot be judged yet: its partition stops at it."""
        self.waiting[msg.source] = msg.offset

    def take(self, index: int, msg: Incoming, when: datetime | None) -> None:
        """Message ``index`` was applied (folded or rejected), at event time ``when``
        (None: not a valid event): its partition moves past it, and its watermark up to
        ``when`` if later."""
        src = msg.source
        mark = self.stands(src).watermark
        if when is not None and (mark is None or when > mark):
            mark = when
        self._stands[src] = stands = Position(msg.offset + 1, mark)
        self.positions[src] = (stands, index)
        self.applied += 1
