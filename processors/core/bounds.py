"""The size cap on a written double (pure): each double a batch writes is encoded once,
and one that would pass ``Limits.max_double_bytes`` (or not encode at all) is not
written. The broker refuses a message over its limit, and a refused send of a double
would come back with the same batch after every restart: the partition would wedge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from processors.core.fold import Double
from processors.core.horizon import evict
from processors.core.plan import Folding, Incoming, Plan
from processors.core.validation import Rejection, sanction_state
from schemas.codec import DOUBLE, encode


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
