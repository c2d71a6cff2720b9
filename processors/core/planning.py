"""Plan one batch of sensor messages: what to write, what to send, where each source
partition now stands. Pure: no faust, Kafka or SQLAlchemy (an import-linter contract),
so it is tested without a broker and the agent only carries it out.

Messages pass the offset gate (:mod:`.gate`: strict offset order per partition, holes,
waits, ownership, watermarks), are validated and folded (:mod:`.validation`), and the
doubles the batch writes are evicted to their partition's horizon: the doubles of a
partition forget what lies beyond the horizon of the lowest *durable* watermark of its
co-partitioned sources (:class:`processors.core.horizon.Horizon`), then capped in size
(:func:`bound_sizes`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.core.fold import Double, as_datetime
from processors.core.gate import Incoming, OffsetGate, Position, Source
from processors.core.held import ms
from processors.core.horizon import evict
from processors.core.plan import DeadLetter, Folding, Plan
from processors.core.validation import Rejection, apply_message, sanction_for, sanction_state
from schemas.codec import DOUBLE, encode


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
    lateness = folding.horizon.lateness if folding.horizon is not None else None
    gate = OffsetGate(positions, assigned, lateness)
    plan = Plan(gate)
    latest: dict[str, Double | None] = {}
    first: dict[str, Double | None] = {}
    touched: dict[str, list[int]] = {}
    for index, msg in enumerate(batch):
        if not gate.admit(index, msg):
            continue
        step = Step(
            index, msg, gate.not_before(msg.source), _partition_of(msg, folding, partitions)
        )
        when = _fold_one(plan, latest, first, touched, step, lookup, folding)
        if msg.source not in gate.waiting:
            gate.take(index, msg, when)
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
            plan.gate.wait(msg)
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


# The size cap on a written double: each double a batch writes is encoded once, and one
# that would pass ``Limits.max_double_bytes`` (or not encode at all) is not written. The
# broker refuses a message over its limit, and a refused send of a double would come
# back with the same batch after every restart: the partition would wedge.


def bound_sizes(
    plan: Plan,
    first: Mapping[str, Double | None],
    touched: Mapping[str, list[int]],
    folding: Folding,
    shrink: Callable[[Double, int], Double | None] = lambda double, index: None,
) -> None:
    """Encode each double the batch writes, once; one that will not encode within the
    size cap (``Limits.max_double_bytes``) is not written, and the batch's events that
    grew it are dead-lettered (``state-too-large``), so the partition never wedges on
    a send the broker refuses. The citizen's other events go on."""
    cap = folding.limits.max_double_bytes
    for citizen, (double, _) in list(plan.doubles.items()):
        value, reason, problem = _encoded(double, cap)
        if value is not None:
            plan.encoded[citizen] = value
            continue
        indices = touched.get(citizen, [])
        del plan.doubles[citizen]  # take back what the batch did to the citizen
        plan.ledger = [x for x in plan.ledger if x[0] != citizen]
        plan.sanctions = [x for x in plan.sanctions if x[0] != citizen]
        for index in indices:
            plan.refuse(index, reason, problem)
        plan.dead_letters.sort(key=lambda d: d.index)
        before = first.get(citizen)
        if before is None or not indices:
            continue
        if citizen in plan.restate:  # re-stated as it stood
            plan.republish[citizen] = (before, indices[0])
            plan.sanctions.append((citizen, sanction_state(before, folding.rules)))
        # What eviction frees is written, so a double at its cap can take events again.
        smaller = shrink(before, indices[0])
        value = _encoded(smaller, cap)[0] if smaller is not None else None
        if smaller is not None and value is not None:
            plan.doubles[citizen] = (smaller, indices[0])
            plan.encoded[citizen] = value


def _encoded(double: Double, cap: int) -> tuple[bytes | None, Rejection, str]:
    """The double's bytes if it encodes within ``cap``, else None and why not."""
    try:
        value = encode(DOUBLE, double)
    except Exception as exc:  # a forged stored version at 2**63 - 1, say
        return None, Rejection.FOLD_ERROR, f"{type(exc).__name__}: {exc}"
    if len(value) > cap:
        return None, Rejection.STATE_TOO_LARGE, f"{len(value)} bytes, limit {cap}"
    return value, Rejection.STATE_TOO_LARGE, ""


def shrinker(
    batch: Sequence[Incoming], floors: Callable[[int], datetime | None], folding: Folding
) -> Callable[[Double, int], Double | None]:
    """The double as eviction would leave it in message ``index``'s partition (None:
    unchanged)."""

    def shrink(double: Double, index: int) -> Double | None:
        floor = floors(batch[index].partition)
        if folding.horizon is None or floor is None:
            return None
        smaller = evict(double, floor, folding.horizon, folding.rules)
        return smaller if smaller is not double else None

    return shrink
