"""What crosses the planner's edges: the messages it is given, where each source
partition stands, what it needs to fold, and the plan it returns. Pure (no faust,
Kafka or SQLAlchemy: an import-linter contract)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processors.core.fold import Double
from processors.core.horizon import Horizon
from processors.core.privacy import Privacy
from processors.core.scoring import Rulebook
from processors.core.validation import Limits, Rejection
from schemas.codec import IdResolver

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
class DeadLetter:
    """A message refused with a reason; its original bytes go to the dead-letter topic."""

    index: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Hole:
    """Offsets ``expected`` up to ``found`` (excluded) of a partition were not delivered;
    ``index`` is the message found at ``found``."""

    expected: int
    found: int
    index: int


@dataclass
class Plan:
    """What one batch does, in the order the agent must do it."""

    #: citizen -> (their latest double, index of the message that made it); written to
    #: the table (whose changelog partition is that message's) and sent to ``doubles``.
    doubles: dict[str, tuple[Double, int]] = field(default_factory=dict)
    #: citizen -> (double, index) sent again unchanged: a re-delivered event, after a
    #: crash that may have persisted the table but not the sends; not written again.
    republish: dict[str, tuple[Double, int]] = field(default_factory=dict)
    #: (citizen, sanction) in the order decided.
    sanctions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: source -> (where it now stands, index of the last message applied there).
    positions: dict[Source, tuple[Position, int]] = field(default_factory=dict)
    #: (citizen, ledger entry, index): appended to the ledger topic.
    ledger: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    #: (citizen, blacklist update): the periods that changed, or were removed.
    blacklist: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Citizens a re-delivered event touched: a crash may have lost what their last
    #: batch sent, so their held ledger, periods and sanction state are sent again.
    restate: set[str] = field(default_factory=set)
    holes: dict[Source, Hole] = field(default_factory=dict)
    #: source -> the offset it waits at: the schema registry could not be asked about
    #: that message, so nothing of the partition moves on until it can (no dead letter).
    waiting: dict[Source, int] = field(default_factory=dict)
    #: citizen -> its written double, encoded (checked against the size cap once).
    encoded: dict[str, bytes] = field(default_factory=dict)
    seen: set[Source] = field(default_factory=set)  # sources delivered in this batch
    rejections: Counter[str] = field(default_factory=Counter)
    applied: int = 0  # messages taken in offset order (folded or rejected)
    redelivered: int = 0  # below the position: skipped
    unassigned: int = 0  # of partitions this worker no longer owns: refused

    def refuse(self, index: int, reason: Rejection, detail: str) -> None:
        """Message ``index`` is a dead letter."""
        self.rejections[reason.value] += 1
        self.dead_letters.append(DeadLetter(index, reason.value, detail))


@dataclass(frozen=True, slots=True)
class Folding:
    """What folding a message needs besides the message: fixed for a worker's life."""

    kinds: Mapping[str, str]  # topic -> the sensor kind it carries
    rules: Rulebook | None = None
    privacy: Privacy | None = None
    limits: Limits = field(default_factory=Limits)
    #: The allowed lateness and the eviction horizon; None keeps every event and all
    #: of the history (the oracle of a recording folded whole does without).
    horizon: Horizon | None = None
    #: Resolves the schema ids of Confluent-framed messages (registry mode); None
    #: rejects them as ``UNKNOWN_SCHEMA_ID``.
    resolver: IdResolver | None = None
    #: The sensors' partitioner, ``(key, partitions) -> partition``: a message on
    #: another partition than its key's is refused (``wrong-partition``); None: unchecked.
    partitioner: Callable[[bytes, int], int] | None = None
