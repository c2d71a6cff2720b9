"""What the agent sends, as whole record batches: one aiokafka ``send_batch`` per topic
partition per batch instead of one ``send`` per message. :func:`add_outputs` turns a
plan's outputs (ledger entries, blacklist updates, dead letters, sanctions) into records
of the outbox, each in its citizen's partition; :func:`incoming` turns faust's events
into the planner's messages.

aiokafka's ``send`` costs tens of microseconds a message in Python (a future, the
accumulator, faust's wrapper around it); appending to a ``BatchBuilder`` costs a few.
Sends are scheduled synchronously (:meth:`Outbox.seal` returns at once), like faust's
own ``send_soon``, so a batch's table writes and their changelog records are one step
that a revocation cannot fall into. Batches of one topic partition are handed to the
producer in the order they were sealed (a chain per partition), so a citizen's
doubles reach the compacted changelog in order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from processors.core.plan import Incoming, Plan
from processors.core.planning import period_key
from schemas import dead_letters
from schemas.codec import BLACKLIST, LEDGER, SANCTION, encode
from schemas.topics import Topics

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
TopicPartition = tuple[str, int]


class Sealed(NamedTuple):
    """One scheduled record batch: where to, the future of its acknowledgement, and how
    many records it holds (their offsets follow the acknowledged base offset)."""

    tp: TopicPartition
    future: asyncio.Future[Any]
    records: int


class Outbox:
    """Record batches being filled, per topic partition, until sealed."""

    def __init__(self, producer: Callable[[], Any]) -> None:
        self.producer = producer  # the started aiokafka producer, when first needed
        self._open: dict[TopicPartition, Any] = {}
        self._sealed: list[tuple[TopicPartition, Any]] = []
        self._last: dict[TopicPartition, asyncio.Future[Any]] = {}

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> None:
        """Append one record to its partition's open batch (sealing a full one)."""
        tp = (topic, partition)
        builder = self._open.get(tp)
        if builder is None:
            builder = self._open[tp] = self.producer().create_batch()
        if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
            self._sealed.append((tp, builder))
            builder = self._open[tp] = self.producer().create_batch()
            if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes fits no batch for {tp}")

    def seal(self) -> list[Sealed]:
        """Schedule every batch filled so far, in the order they were filled."""
        self._sealed += self._open.items()
        self._open = {}
        loop = asyncio.get_running_loop()
        out: list[Sealed] = []
        for tp, builder in self._sealed:
            handed: asyncio.Future[None] = loop.create_future()
            sending = asyncio.ensure_future(
                self.send_after(self._last.get(tp), handed, builder, tp)
            )
            out.append(Sealed(tp, sending, builder.record_count()))
            self._last[tp] = handed
            handed.add_done_callback(functools.partial(self._forget, tp))
        self._sealed = []
        return out

    def _forget(self, tp: TopicPartition, handed: asyncio.Future[None]) -> None:
        if self._last.get(tp) is handed:
            del self._last[tp]

    async def send_after(
        self,
        after: asyncio.Future[None] | None,
        handed: asyncio.Future[None],
        builder: Any,
        tp: TopicPartition,
    ) -> Any:
        try:
            if after is not None:  # the partition's previous batch is handed over first
                await after
            delivery = await self.producer().send_batch(builder, tp[0], partition=tp[1])
        finally:
            if not handed.done():
                handed.set_result(None)
        return await delivery


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
