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

Each position also keeps its partition's *watermark*, the latest event time seen
there, which depends only on that partition's order. An event more than the allowed
lateness behind it is refused as too late, and the doubles of the partition forget
what lies beyond the horizon of the lowest *durable* watermark of its co-partitioned
sources (``processors.core.horizon.Horizon``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.core.bounds import bound_sizes, shrinker
from processors.core.fold import Double, as_datetime
from processors.core.held import ms
from processors.core.horizon import evict
from processors.core.plan import (
    DeadLetter,
    Folding,
    Hole,
    Incoming,
    Plan,
    Position,
    Source,
)
from processors.core.validation import Rejection, apply_message, sanction_for, sanction_state


def plan_batch(
    batch: Sequence[Incoming],
    positions: Callable[[Source], Position],
    lookup: Callable[[str, int], Double | None],
    folding: Folding,
    assigned: Collection[Source] | None = None,
    floors: Callable[[int], datetime | None] = lambda partition: None,
    partitions: Callable[[str], int | None] = lambda topic: None,
) -> Plan:
    """Plan ``batch``: ``positions(source)`` is where each source stands,
    ``lookup(citizen, index)`` the stored double (read in message ``index``'s partition),
    ``assigned`` the sources this worker owns (None: all), ``floors(partition)`` the
    lowest durable watermark of the partition's sources (None while one is silent:
    nothing is evicted), ``partitions(topic)`` how many partitions a topic has (None:
    unknown, so the partition is not checked).

    No one message can make it raise: whatever a message holds ends as a dead letter,
    a duplicate, or (the registry unreachable) a wait at its offset."""
    plan = Plan()
    expected: dict[Source, int] = {}
    marks: dict[Source, datetime | None] = {}
    latest: dict[str, Double | None] = {}
    first: dict[str, Double | None] = {}
    touched: dict[str, list[int]] = {}
    lateness = folding.horizon.lateness if folding.horizon is not None else None
    for index, msg in enumerate(batch):
        src = msg.source
        if assigned is not None and src not in assigned:
            plan.unassigned += 1
            continue
        plan.seen.add(src)
        if src in plan.holes or src in plan.waiting:
            continue  # nothing after a hole or a wait is applied until a seek re-delivers it
        at = expected.get(src)
        if at is None:
            stands = positions(src)
            at = expected[src] = stands.next
            marks[src] = stands.watermark
        if msg.offset < at:
            plan.redelivered += 1
            continue
        if msg.offset > at:
            plan.holes[src] = Hole(at, msg.offset, index)
            continue
        mark = marks[src]
        not_before = mark - lateness if mark is not None and lateness is not None else None
        step = Step(index, msg, not_before, _partition_of(msg, folding, partitions))
        when = _fold_one(plan, latest, first, touched, step, lookup, folding)
        if src in plan.waiting:
            continue
        expected[src] = msg.offset + 1
        plan.applied += 1
        if when is not None and (mark is None or when > mark):
            marks[src] = mark = when
        plan.positions[src] = (Position(msg.offset + 1, mark), index)
    _republish_sanctions(plan, folding)
    _evict(plan, batch, floors, folding)
    bound_sizes(plan, first, touched, folding, shrinker(batch, floors, folding))
    _blacklist_updates(plan, first)
    return plan


@dataclass(frozen=True, slots=True)
class Step:
    """One message taken in offset order, and what its partition expects of it."""

    index: int
    msg: Incoming
    not_before: datetime | None  # its partition's watermark minus the allowed lateness
    partition: int | None  # the partition its key belongs on, when known


def _partition_of(
    msg: Incoming, folding: Folding, partitions: Callable[[str], int | None]
) -> int | None:
    if folding.partitioner is None or msg.key is None:
        return None
    count = partitions(msg.topic)
    return folding.partitioner(msg.key, count) if count else None


def _fold_one(
    plan: Plan,
    latest: dict[str, Double | None],
    first: dict[str, Double | None],
    touched: dict[str, list[int]],
    step: Step,
    lookup: Callable[[str, int], Double | None],
    folding: Folding,
) -> datetime | None:
    """Fold one message into the plan; when it happened, if it is a valid event. A
    message that cannot be judged yet (the registry is unreachable) makes its partition
    wait at it (``Plan.waiting``)."""
    index, msg = step.index, step.msg
    if step.partition is not None and step.partition != msg.partition:
        detail = f"key {msg.key!r:.80} belongs on partition {step.partition}, not {msg.partition}"
        plan.refuse(index, Rejection.WRONG_PARTITION, detail)
        return None
    try:
        key = msg.key
        current = None
        if key is not None:
            cid = key.decode("utf-8", "replace")
            citizen = folding.privacy.pseudonym(cid) if folding.privacy is not None else cid
            if citizen not in latest:
                latest[citizen] = first[citizen] = lookup(citizen, index)
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
            not_before=step.not_before,
            resolver=folding.resolver,
        )
        when = as_datetime(outcome.occurred_at) if outcome.occurred_at is not None else None
        sanction = None
        if outcome.double is not None:
            sanction = sanction_for(current, outcome.double, folding.rules)
    except Exception as exc:  # a forged stored double, or a bug: this message only
        plan.refuse(index, Rejection.FOLD_ERROR, f"{type(exc).__name__}: {exc}")
        return None
    if outcome.double is None:
        assert outcome.rejected is not None
        if outcome.rejected is Rejection.REGISTRY_UNAVAILABLE:
            plan.waiting[msg.source] = msg.offset
            return None
        plan.rejections[outcome.rejected.value] += 1
        if outcome.rejected is Rejection.DUPLICATE and current is not None:
            plan.republish.setdefault(current["citizen_id"], (current, index))
            plan.restate.add(current["citizen_id"])
        if outcome.rejected.dead_letter:
            plan.dead_letters.append(DeadLetter(index, outcome.rejected.value, outcome.detail))
        return when
    citizen = outcome.double["citizen_id"]
    latest[citizen] = outcome.double
    touched.setdefault(citizen, []).append(index)
    plan.doubles[citizen] = (outcome.double, index)
    plan.ledger.extend((citizen, e, index) for e in outcome.entries)
    if sanction is not None:
        plan.sanctions.append((citizen, sanction))
    return when


def _evict(
    plan: Plan,
    batch: Sequence[Incoming],
    floors: Callable[[int], datetime | None],
    folding: Folding,
) -> None:
    """Bound every double the batch writes to its partition's horizon."""
    if folding.horizon is None:
        return
    for citizen, (double, index) in plan.doubles.items():
        floor = floors(batch[index].partition)
        if floor is not None:
            plan.doubles[citizen] = (evict(double, floor, folding.horizon, folding.rules), index)


def period_key(citizen: str, period: Mapping[str, Any]) -> str:
    """The blacklist topic's key of a period: ``citizen/entered_at ms``."""
    return f"{citizen}/{ms(period['entered_at'])}"


def _update(citizen: str, period: Mapping[str, Any], version: int, removed: bool) -> dict[str, Any]:
    return {
        "citizen_id": citizen,
        "entered_at": period["entered_at"],
        "lifted_at": None if removed else period["lifted_at"],
        "score_at_entry": period["score_at_entry"],
        "event_id": period["event_id"],
        "removed": removed,
        "double_version": version,
    }


def _blacklist_updates(plan: Plan, first: Mapping[str, Double | None]) -> None:
    """Each written double's periods that changed since the batch began (upserts), and
    those a late event removed; periods sealed into the checkpoint are not removals.
    A republished double states all of its periods again."""
    for citizen, (double, _) in plan.doubles.items():
        before = first.get(citizen)
        old = {p["entered_at"]: p for p in (before["blacklist"] if before else [])}
        new = {p["entered_at"]: p for p in double["blacklist"]}
        cp = double.get("checkpoint")
        for at, p in old.items():
            sealed = cp is not None and p["lifted_at"] is not None and p["lifted_at"] < cp["at"]
            if at not in new and not sealed:
                plan.blacklist.append((citizen, _update(citizen, p, double["version"], True)))
        for at, p in new.items():
            if old.get(at) != p:
                plan.blacklist.append((citizen, _update(citizen, p, double["version"], False)))
    if not plan.restate:
        return
    changed = {(c, u["entered_at"]) for c, u in plan.blacklist if c in plan.restate}
    sent = {(c, e["event_id"], e["rule_id"]) for c, e, _ in plan.ledger if c in plan.restate}
    for citizen in sorted(plan.restate):
        double, index = plan.doubles.get(citizen) or plan.republish[citizen]
        plan.blacklist += [
            (citizen, _update(citizen, p, double["version"], False))
            for p in double["blacklist"]
            if (citizen, p["entered_at"]) not in changed
        ]
        plan.ledger += [
            (citizen, e, index)
            for e in double["ledger"]
            if (citizen, e["event_id"], e["rule_id"]) not in sent
        ]


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
