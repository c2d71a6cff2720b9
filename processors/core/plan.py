"""What crosses the planner's edges: what it needs to fold (:class:`Folding`) and the
plan it returns (the messages and positions are the gate's: :mod:`.gate`). Pure (no faust,
Kafka or SQLAlchemy: an import-linter contract)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from processors.core.fold import Double
from processors.core.gate import Hole, Incoming, OffsetGate, Position, Source
from processors.core.horizon import Horizon
from processors.core.privacy import Privacy
from processors.core.scoring import Rulebook
from processors.core.validation import Limits, Rejection
from schemas.codec import IdResolver

__all__ = ["DeadLetter", "Folding", "Hole", "Incoming", "Plan", "Position", "Source"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message refused with a reason; its original bytes go to the dead-letter topic."""

    index: int
    reason: str
    detail: str


@dataclass
class Plan:
    """What one batch does: the domain's outputs, in the order the agent must send them
    (doubles, ledger entries, blacklist updates, dead letters, sanctions), and where its
    sources stand after it (``gate``, the delivery part, read through the properties)."""

    gate: OffsetGate
    #: citizen -> (their latest double, index of the message that made it); written to
    #: the table (whose changelog partition is that message's) and sent to ``doubles``.
    doubles: dict[str, tuple[Double, int]] = field(default_factory=dict)
    #: citizen -> (double, index) written and sent again, unchanged: a re-delivered
    #: event, after a crash that may have persisted the table but not the sends.
    republish: dict[str, tuple[Double, int]] = field(default_factory=dict)
    #: (citizen, sanction) in the order decided.
    sanctions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: (citizen, ledger entry, index): appended to the ledger topic.
    ledger: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    #: (citizen, blacklist update): the periods that changed, or were removed.
    blacklist: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Citizens a re-delivered event touched: a crash may have lost what their last
    #: batch sent, so their held ledger, periods and sanction state are sent again.
    restate: set[str] = field(default_factory=set)
    #: citizen -> its written double, encoded (checked against the size cap once).
    encoded: dict[str, bytes] = field(default_factory=dict)
    rejections: Counter[str] = field(default_factory=Counter)

    def refuse(self, index: int, reason: Rejection, detail: str) -> None:
        """Message ``index`` is a dead letter."""
        self.rejections[reason.value] += 1
        self.dead_letters.append(DeadLetter(index, reason.value, detail))

    # The delivery part, read through the plan (tests, benches); the gate owns it.
    positions = property(attrgetter("gate.positions"))
    holes = property(attrgetter("gate.holes"))
    waiting = property(attrgetter("gate.waiting"))
    seen = property(attrgetter("gate.seen"))
    applied = property(attrgetter("gate.applied"))
    redelivered = property(attrgetter("gate.redelivered"))
    unassigned = property(attrgetter("gate.unassigned"))


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
