"""Plan one batch of sensor messages: what to write, what to send, where each
source partition now stands. Pure: no faust, Kafka or SQLAlchemy (an import-linter
contract), so it is tested without a broker and the agent only carries it out.

Correctness does not rest on faust's commits (faust 0.15.3 can commit over records it
never delivered after a rebalance: ``../shared/faust-rebalance-lab``). Each source
partition's *position*, the next offset to apply, is kept in the processor's state and
messages are applied strictly in offset order:

- below the position: a re-delivery, already applied and flushed: skipped;
- at the position: applied, and the position moves on;
- above the position: a hole (faust dropped records): nothing more of that partition is
  applied in this batch, and the agent seeks back to the position;
- of a partition not assigned to this worker any more: refused (another worker owns it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.fold import Double
from processors.harvest import Limits, Rejection, apply_message, sanction_for, sanction_state
from processors.privacy import Privacy
from processors.scoring import Rulebook

#: A source partition: (topic, partition).
Source = tuple[str, int]


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
    #: source -> (next offset to apply, index of the last message applied there).
    positions: dict[Source, tuple[int, int]] = field(default_factory=dict)
    holes: dict[Source, Hole] = field(default_factory=dict)
    seen: set[Source] = field(default_factory=set)  # sources delivered in this batch
    rejections: Counter[str] = field(default_factory=Counter)
    applied: int = 0  # messages taken in offset order (folded or rejected)
    redelivered: int = 0  # below the position: skipped
    unassigned: int = 0  # of partitions this worker no longer owns: refused


@dataclass(frozen=True, slots=True)
class Folding:
    """What folding a message needs besides the message: fixed for a worker's life."""

    kinds: Mapping[str, str]  # topic -> the sensor kind it carries
    rules: Rulebook | None = None
    privacy: Privacy | None = None
    limits: Limits = field(default_factory=Limits)


def plan_batch(
    batch: Sequence[Incoming],
    positions: Callable[[Source], int],
    lookup: Callable[[str, int], Double | None],
    folding: Folding,
    assigned: Collection[Source] | None = None,
) -> Plan:
    """Plan ``batch``: ``positions(source)`` is where each source stands (0 when new),
    ``lookup(citizen, index)`` the stored double (read in message ``index``'s partition),
    ``assigned`` the sources this worker owns (None: all)."""
    plan = Plan()
    expected: dict[Source, int] = {}
    latest: dict[str, Double | None] = {}
    for index, msg in enumerate(batch):
        src = msg.source
        if assigned is not None and src not in assigned:
            plan.unassigned += 1
            continue
        plan.seen.add(src)
        if src in plan.holes:
            continue  # nothing after a hole is applied until the seek re-delivers it
        at = expected.get(src)
        if at is None:
            at = expected[src] = positions(src)
        if msg.offset < at:
            plan.redelivered += 1
            continue
        if msg.offset > at:
            plan.holes[src] = Hole(at, msg.offset, index)
            continue
        expected[src] = msg.offset + 1
        plan.positions[src] = (msg.offset + 1, index)
        plan.applied += 1
        _fold_one(plan, latest, index, msg, lookup, folding)
    _republish_sanctions(plan, folding)
    return plan


def _fold_one(
    plan: Plan,
    latest: dict[str, Double | None],
    index: int,
    msg: Incoming,
    lookup: Callable[[str, int], Double | None],
    folding: Folding,
) -> None:
    key = msg.key
    current = None
    if key is not None:
        cid = key.decode("utf-8", "replace")
        citizen = folding.privacy.pseudonym(cid) if folding.privacy is not None else cid
        if citizen not in latest:
            latest[citizen] = lookup(citizen, index)
        current = latest[citizen]
    outcome = apply_message(
        current,
        expected_kind=folding.kinds.get(msg.topic),
        topic=msg.topic,
        key=key,
        value=msg.value,
        rules=folding.rules,
        privacy=folding.privacy,
        limits=folding.limits,
    )
    if outcome.double is None:
        assert outcome.rejected is not None
        plan.rejections[outcome.rejected.value] += 1
        if outcome.rejected is Rejection.DUPLICATE and current is not None:
            plan.republish.setdefault(current["citizen_id"], (current, index))
        if outcome.rejected.dead_letter:
            plan.dead_letters.append(DeadLetter(index, outcome.rejected.value, outcome.detail))
        return
    citizen = outcome.double["citizen_id"]
    latest[citizen] = outcome.double
    plan.doubles[citizen] = (outcome.double, index)
    sanction = sanction_for(current, outcome.double, folding.rules)
    if sanction is not None:
        plan.sanctions.append((citizen, sanction))


def _republish_sanctions(plan: Plan, folding: Folding) -> None:
    """A re-delivered event may follow a crash that lost its sanction: send each such
    citizen's *current* sanction state again (never an old one), unless this batch
    already ends on it."""
    last = dict(plan.sanctions)  # citizen -> the last sanction decided in this batch
    for citizen, (double, _) in list(plan.republish.items()):
        if citizen in plan.doubles:
            double = plan.doubles[citizen][0]
            del plan.republish[citizen]  # its new double is sent anyway
        state = sanction_state(double, folding.rules)
        if last.get(citizen) != state:
            plan.sanctions.append((citizen, state))
