"""faust agents: the harvester that folds sensor events into doubles and sanctions.

A batch is planned by the pure :func:`processors.batch.plan_batch`; this module only
carries the plan out, in an order that loses nothing across a crash or a rebalance:

1. the touched doubles are written to the table, whose changelog is the ``doubles``
   topic, in the same step as the plan, so a revocation cannot fall between the
   ownership check and the writes;
2. ledger entries, blacklist updates, dead letters and sanctions are sent, and the
   broker's acknowledgement of all of it is awaited;
3. only then does each source partition's position (and watermark) move on, written
   to the ``positions`` table, unless a rebalance began meanwhile.

A crash before 3 re-delivers the batch: events already in a double are duplicates,
and their citizens' doubles, held ledger, periods and sanction state are sent again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faust.exceptions import ConsumerNotStarted
from faust.streams import _current_event  # private; tables read it for the partition
from faust.types import TP

from processors.app import app, doubles, positions, sensor_topics, settings
from processors.batch import (
    Folding,
    Hole,
    Incoming,
    Plan,
    Position,
    Source,
    period_key,
    plan_batch,
)
from processors.fold import as_datetime
from processors.harvest import Limits, Rejection
from processors.held import ms
from processors.horizon import Horizon
from processors.outbox import Outbox
from processors.privacy import Privacy
from processors.progress import Progress
from processors.scoring import load_rules
from schemas import dead_letters
from schemas.codec import BLACKLIST, DOUBLE, LEDGER, SANCTION, encode

log = logging.getLogger(__name__)

secret = settings.processor.pseudonymise_key
rules = load_rules(settings.processor.rules_path)
folding = Folding(
    kinds=settings.topics.kind_of,
    rules=rules,
    privacy=Privacy.of(
        settings.processor.harvest_kinds, secret.get_secret_value() if secret else None
    ),
    limits=Limits(max_message_bytes=settings.processor.max_message_bytes),
    horizon=Horizon.of(rules, settings.processor.lateness_s),
)
topics = settings.topics
rejections: Counter[str] = Counter()
progress = Progress(
    seek_every_s=settings.processor.seek_every_s,
    stall_s=settings.processor.stall_s,
    give_up_after=settings.processor.gap_seeks,
)
FAULT_EXIT_CODE = 70


def position_key(src: Source) -> str:
    return f"{src[0]}/{src[1]}"


def stored_position(src: Source) -> Position:
    held = positions.get(position_key(src))
    if not held:
        return Position()
    wm = held.get("wm")
    return Position(int(held["next"]), as_datetime(wm) if wm is not None else None)


def position_of(src: Source) -> Position:
    """Where ``src`` stands (offset 0 and no watermark for a partition never applied):
    as the last batch planned left it, which may not be written yet.

    The first read of a source since it was assigned is a recovered, durable value:
    it seeds the durable watermark that eviction may rely on.
    """
    planned = progress.planned.get(src)
    if planned is not None and src in progress.durable:
        return planned  # already seeded: the table need not be read again
    stored = stored_position(src)
    progress.durable.setdefault(src, stored.watermark)
    return planned or stored


def floor_of(partition: int) -> datetime | None:
    """The lowest durable watermark of the partition's sensor sources; None while one of
    them has none (a silent source holds eviction back)."""
    lowest = None
    for topic in folding.kinds:
        src = (topic, partition)
        if src not in progress.durable:
            progress.durable[src] = stored_position(src).watermark
        wm = progress.durable[src]
        if wm is None:
            return None
        lowest = wm if lowest is None else min(lowest, wm)
    return lowest


# faust's aiokafka producer (private; faust itself offers no record batches).
outbox = Outbox(lambda: app.producer._ensure_producer())  # type: ignore[attr-defined]


def sent_now() -> list[asyncio.Future[Any]]:
    """Schedule everything added to the outbox; the futures of its acknowledgements (the
    table tracks those of its changelog, the doubles topic)."""
    out = []
    for (topic, _), fut in outbox.seal():
        if topic == topics.doubles:
            doubles.track(fut)
        out.append(fut)
    return out


def assigned_sources() -> set[Source] | None:
    """The sensor partitions this worker owns; None under ``test_context`` (no consumer)."""
    try:
        return {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
    except ConsumerNotStarted:
        return None


async def flush_outputs(sent: Sequence[Any] = ()) -> None:
    """Wait until the broker acknowledged ``sent`` and every table write so far; the
    watermarks written before are durable from then on."""
    written = dict(progress.written)
    pending = [*sent, *doubles.unsent, *positions.unsent]
    if pending:
        await asyncio.gather(*pending)
    progress.flushed(written)


async def seek(src: Source, offset: int) -> None:
    """Seek in the consumer's own thread: faust's ``Consumer.seek`` calls aiokafka from
    this one, which does not wake aiokafka's fetcher (the partition then starves)."""
    await app.consumer.seek_wait({TP(*src): offset})


@app.agent(sensor_topics)
async def harvest(stream: Any) -> AsyncIterator[int]:
    """Fold sensor events into their citizens' doubles, a batch at a time.

    Yields how many events each batch held (``test_context().put`` waits for it).
    """
    size, within = settings.processor.batch_size, settings.processor.batch_within_s
    finishing: asyncio.Future[Plan] | None = None
    try:
        async for events in stream.take_events(size, within=within):
            # Pipelined: this batch is planned and sent while the previous one's sends
            # are still being acknowledged; positions are written in batch order.
            started = await start_batch(events)
            if finishing is not None:
                await finishing
            finishing = asyncio.ensure_future(finish_batch(started)) if started else None
            yield len(events)
    finally:
        if finishing is not None:
            await finishing


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


def incoming(event: Any) -> Incoming:
    m = event.message
    key = m.key if isinstance(m.key, bytes | None) else str(m.key).encode()
    return Incoming(m.topic, m.partition, m.offset, key, m.value)


@dataclass
class Started:
    """A batch planned, written to the table's store and sent, not yet acknowledged."""

    events: Sequence[Any]
    plan: Plan
    sent: list[asyncio.Future[Any]]
    epoch: int  # ``app.revocations`` when it was planned


async def start_batch(events: Sequence[Any]) -> Started | None:
    """Plan the batch, write its doubles to the store and schedule every send, in one
    step; None when a rebalance is under way (its events come back)."""
    epoch = app.revocations
    if app.rebalancing:
        # faust's flag, from a revocation until recovery ends ("Worker ready"): a
        # revocation waits for the table writes made so far, and a table partition being
        # recovered must not be written (the recovery would end on stale values).
        log.info("a batch taken during a rebalance is left to be re-delivered")
        return None
    batch = [incoming(e) for e in events]
    started_at = time.perf_counter()

    def lookup(citizen: str, index: int) -> Any:
        with processing(events[index]):  # RocksDB keeps one store per partition
            return doubles.get(citizen)

    plan = plan_batch(batch, position_of, lookup, folding, assigned_sources(), floor_of)
    rejections.update(plan.rejections)
    planned_at = time.perf_counter()
    for src, (stands, _) in plan.positions.items():
        progress.planned[src] = stands  # the next batch is planned from here
    for citizen, (double, index) in plan.doubles.items():
        write_double(citizen, double, events[index])
    if settings.processor.fault == "exit-before-sanction" and any(
        s["active"] for _, s in plan.sanctions
    ):
        await inject_exit_before_sanction()
    for citizen, (double, index) in plan.republish.items():
        write_double(citizen, double, events[index])
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
    sent = sent_now()
    log.debug(
        "batch of %d: planned in %.1f ms, %d sends scheduled in %.1f ms",
        len(events),
        (planned_at - started_at) * 1e3,
        len(sent),
        (time.perf_counter() - planned_at) * 1e3,
    )
    return Started(events, plan, sent, epoch)


async def finish_batch(started: Started) -> Plan:
    """Wait until the broker acknowledged the batch's sends, then move its positions on
    (unless a rebalance began meanwhile) and seek back to its holes."""
    events, plan, epoch = started.events, started.plan, started.epoch
    await flush_outputs(started.sent)
    if app.revocations != epoch:
        # A rebalance began while this batch was sent: its partitions may belong to
        # another worker now. Its events will be re-delivered and found applied.
        log.info("a rebalance began during a batch; its positions are left unwritten")
        return plan
    now = time.monotonic()
    for src in plan.seen:
        progress.delivered[src] = now
    for src, (stands, index) in plan.positions.items():
        write_position(src, stands, events[index])
        progress.moved(src, stands.next, now)
    for src, hole in plan.holes.items():
        await on_hole(src, hole, events[hole.index], now)
    return plan


def write_double(citizen: str, double: Any, event: Any) -> None:
    """Write ``double`` to the table's store and add it to the outbox for ``doubles``,
    the table's changelog, in ``event``'s partition.

    faust's own table write sends the changelog through ``send_soon`` (about 120 µs a
    message here); a record in a batch costs a few.
    """
    with processing(event):  # RocksDB keeps one store per partition
        doubles.data[citizen] = double
    value = encode(DOUBLE, double)
    outbox.add(topics.doubles, event.message.partition, citizen.encode(), value)


def write_position(src: Source, stands: Position, event: Any) -> None:
    """Write where ``src`` stands, in ``event``'s partition (beside its doubles)."""
    wm = stands.watermark
    with processing(event):
        positions[position_key(src)] = {
            "next": stands.next,
            "wm": ms(wm) if wm is not None else None,
        }
    progress.written[src] = wm


async def on_hole(src: Source, hole: Hole, found: Any, now: float) -> None:
    """Seek back to a hole (rate-limited); after too many seeks, dead-letter the range
    as missing (compaction, transaction markers, retention) and go on from it."""
    action = progress.on_hole(src, hole.expected, hole.found, now)
    if action == "seek":
        log.info(
            "%s[%d]: offset %d expected, %d delivered; seeking back",
            *src,
            hole.expected,
            hole.found,
        )
        await seek(src, hole.expected)
    elif action == "give-up":
        detail = (
            f"offsets {hole.expected}..{hole.found - 1} of {src[0]}[{src[1]}] never "
            f"arrived after {progress.give_up_after} seeks (compaction, transaction "
            "markers or retention); the harvester goes on from the next one"
        )
        log.warning("%s", detail)
        headers = dead_letters.headers(
            Rejection.OFFSETS_MISSING.value, detail, src[0], src[1], hole.expected
        )
        outbox.add(topics.dlq, src[1], None, b"", headers)
        await flush_outputs(sent_now())
        stands = Position(hole.found, stored_position(src).watermark)
        write_position(src, stands, found)
        if progress.planned.get(src, stands).next <= hole.found:
            progress.planned[src] = stands
        progress.moved(src, hole.found, now)
        await seek(src, hole.found)


async def inject_exit_before_sanction() -> None:
    """Test-only fault (``PROCESSOR_FAULT=exit-before-sanction``): persist a
    blacklisting's double (written to the table just before) and exit before its
    sanction is sent."""
    await flush_outputs(sent_now())
    log.warning("fault injection: exiting between a blacklisting and its sanction")
    logging.shutdown()
    os._exit(FAULT_EXIT_CODE)


@app.timer(1.0)
async def keep_positions() -> None:
    """Seek a partition whose position is stuck below its high-water mark, commit the
    positions to the consumer group (so Kafka's lag tools tell the truth), log lag."""
    if app.rebalancing:
        return
    with suppress(ConsumerNotStarted):
        consumer = app.consumer
        owned = [tp for tp in consumer.assignment() if tp.topic in folding.kinds]
        now = time.monotonic()
        stands = {tp: stored_position((tp.topic, tp.partition)).next for tp in owned}
        for tp, at in stands.items():
            high = consumer.highwater(tp)
            progress.seen_highwater((tp.topic, tp.partition), at, high)
            if progress.stalled((tp.topic, tp.partition), at, high, now):
                log.info("%s[%d]: stuck at %d below high-water %s; seeking", *tp, at, high)
                await seek((tp.topic, tp.partition), at)
        fresh = {tp: at for tp, at in stands.items() if progress.to_commit(tp, at)}
        if fresh:
            await flush_outputs()  # never commit a position the changelog may not have
            await consumer._commit_offsets(fresh, start_new_transaction=False)  # type: ignore[attr-defined]
            for tp, at in fresh.items():
                progress.committed[tp] = at
        progress.maybe_log_lag(log, now)


@app.on_partitions_revoked.connect  # type: ignore[arg-type]
async def forget_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
    """Partitions given up: their positions are another worker's to keep now."""
    revoked = args[0] if args else kwargs.get("revoked", ())
    progress.forget({(tp.topic, tp.partition) for tp in revoked})
    # Batches in flight write no position now (a revocation began): plan from the table.
    progress.planned.clear()
