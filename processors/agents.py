"""faust agents: the harvester that folds sensor events into doubles and sanctions."""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event  # private; tables read it for the partition

from processors.app import (
    DoubleCodec,
    app,
    dlq_topic,
    doubles,
    doubles_topic,
    sanctions_topic,
    sensor_topics,
    settings,
)
from processors.harvest import Limits, Rejection, apply_message, sanction_for
from processors.privacy import Privacy
from processors.scoring import load_rules
from schemas.codec import DOUBLE, SANCTION, encode

log = logging.getLogger(__name__)

rules = load_rules(settings.processor.rules_path)
KIND_BY_TOPIC = {settings.topics.sensor(k): k for k in ("metro", "payment", "book", "camera")}
limits = Limits(max_message_bytes=settings.processor.max_message_bytes)
rejections: Counter[str] = Counter()
secret = settings.processor.pseudonymise_key
privacy = Privacy.of(
    settings.processor.harvest_kinds, secret.get_secret_value() if secret else None
)


def dead_letter_headers(
    reason: str, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Where a dead letter came from and why it was refused."""
    return [
        ("moisson.reason", reason.encode()),
        ("moisson.detail", detail[:500].encode("utf-8", "replace")),
        ("moisson.topic", topic.encode()),
        ("moisson.partition", str(partition).encode()),
        ("moisson.offset", str(offset).encode()),
    ]


@app.agent(sensor_topics)
async def harvest(stream: Any) -> AsyncIterator[int]:
    """Fold sensor events into their citizens' doubles, a batch at a time.

    Each message is still applied on its own (``apply_message``); the batch only
    coalesces the writes: one table write and one ``doubles`` message per citizen per
    batch, carrying the citizen's latest double. Events are acked (and their offsets
    committed) after their batch is done, so a crash re-delivers them and the double's
    event-id set turns them into no-ops. Yields how many events each batch held
    (``test_context().put`` waits for it).
    """
    size, within = settings.processor.batch_size, settings.processor.batch_within_s
    if size <= 1:
        # One event at a time: faust acks each event once the next is asked for, the
        # path every crash drill passes. Batches go through faust's take buffer, which
        # lost events when a worker of two was killed (tests/drills).
        async for event in stream.events():
            await harvest_batch([event])
            yield 1
        return
    async for events in stream.take_events(size, within=within):
        await harvest_batch(events)
        yield len(events)


@contextmanager
def processing(event: Any) -> Iterator[None]:
    """Make ``event`` the one tables see as being processed (it picks the partition).

    Only faust's context variable is set, in this task: ``Stream.current_event`` belongs
    to the take buffer, which fills it in another task while a batch is being written.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


async def harvest_batch(events: Sequence[Any]) -> None:
    """Apply every event in order; then write each touched double once and send sanctions."""
    latest: dict[str, tuple[Any, Any]] = {}  # citizen -> (double, the event that made it)
    sanctions: list[tuple[str, dict[str, Any]]] = []
    for event in events:
        msg = event.message
        key = msg.key if isinstance(msg.key, bytes | None) else str(msg.key).encode()
        current = None
        if key is not None:
            pseudonym = privacy.pseudonym(key.decode("utf-8", "replace"))
            held = latest.get(pseudonym)
            if held is not None:
                current = held[0]
            else:
                # A table read uses the current event's partition (RocksDB has one per partition).
                with processing(event):
                    current = doubles.get(pseudonym)
        outcome = apply_message(
            current,
            expected_kind=KIND_BY_TOPIC.get(msg.topic),
            topic=msg.topic,
            key=key,
            value=msg.value,
            rules=rules,
            privacy=privacy,
            limits=limits,
        )
        if outcome.double is None:
            assert outcome.rejected is not None
            rejections[outcome.rejected.value] += 1
            if outcome.rejected is Rejection.DUPLICATE and current is not None:
                # Publish the double again: a crash may have persisted the table's
                # changelog but not this double; the sink's version guard drops repeats.
                latest.setdefault(current["citizen_id"], (current, event))
            if outcome.rejected.dead_letter:
                log.warning(
                    "rejected %s[%d]@%d: %s (%s)",
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    outcome.rejected.value,
                    outcome.detail,
                )
                # Nothing is lost: the original bytes go to the dead-letter topic.
                await dlq_topic.send(
                    key=key,
                    value=msg.value,
                    headers=dead_letter_headers(
                        outcome.rejected.value,
                        outcome.detail,
                        msg.topic,
                        msg.partition,
                        msg.offset,
                    ),
                )
            continue
        citizen = outcome.double["citizen_id"]
        latest[citizen] = (outcome.double, event)
        sanction = sanction_for(current, outcome.double, rules)
        if sanction is not None:
            sanctions.append((citizen, sanction))
    for citizen, (double, event) in latest.items():
        value = encode(DOUBLE, double)
        # The changelog partition is the current event's: the one this double came from.
        DoubleCodec.encoded = (double, value)  # the changelog reuses these bytes
        try:
            with processing(event):
                doubles[citizen] = double
        finally:
            DoubleCodec.encoded = None
        await doubles_topic.send(key=citizen.encode(), value=value)
    for citizen, sanction in sanctions:
        log.info(
            "sanction: %s %s (%s)",
            citizen,
            "blacklisted" if sanction["active"] else "lifted",
            sanction["reason"],
        )
        await sanctions_topic.send(key=citizen.encode(), value=encode(SANCTION, sanction))
