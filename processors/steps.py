"""What a planned batch becomes in the outbox, besides its doubles: ledger entries,
blacklist updates, dead letters and sanctions, each in its citizen's partition (the
one its events come from). Pure bookkeeping: the harvester decides when."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processors.batch import Incoming, Plan, period_key
from processors.outbox import Outbox
from schemas import dead_letters
from schemas.codec import BLACKLIST, LEDGER, SANCTION, encode
from schemas.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class Started:
    """A batch planned, written to the table's store and sent, not yet acknowledged."""

    events: Sequence[Any]
    plan: Plan
    sent: list[asyncio.Future[Any]]
    epoch: int  # ``app.revocations`` when it was planned


def incoming(event: Any) -> Incoming:
    m = event.message
    key = m.key if isinstance(m.key, bytes | None) else str(m.key).encode()
    return Incoming(m.topic, m.partition, m.offset, key, m.value)


def add_outputs(outbox: Outbox, topics: Topics, batch: Sequence[Incoming], plan: Plan) -> None:
    """Add the plan's ledger entries, blacklist updates, dead letters and sanctions to
    ``outbox``, in that order (its doubles are already in)."""
    # Keyed by citizen, in the citizen's partition (the one its events come from).
    for c, e, index in plan.ledger:
        outbox.add(
            topics.ledger,
            batch[index].partition,
            c.encode(),
            encode(LEDGER, {"citizen_id": c, **e}),
        )
    home = {c: batch[i].partition for c, (_, i) in [*plan.doubles.items(), *plan.republish.items()]}
    for c, update in plan.blacklist:
        value = encode(BLACKLIST, update)
        outbox.add(topics.blacklist, home[c], period_key(c, update).encode(), value)
    for dead in plan.dead_letters:
        msg = batch[dead.index]
        log.warning(
            "rejected %s[%d]@%d: %s (%s)",
            msg.topic,
            msg.partition,
            msg.offset,
            dead.reason,
            dead.detail,
        )
        headers = dead_letters.headers(
            dead.reason, dead.detail, msg.topic, msg.partition, msg.offset
        )
        # Nothing is lost: the original bytes, with the reason.
        outbox.add(topics.dlq, msg.partition, msg.key, msg.value, headers)
    for citizen, sanction in plan.sanctions:
        log.info(
            "sanction: %s %s (%s)",
            citizen,
            "blacklisted" if sanction["active"] else "not blacklisted",
            sanction["reason"],
        )
        value = encode(SANCTION, sanction)
        outbox.add(topics.sanctions, home[citizen], citizen.encode(), value)
