"""The fold agent (the harvester): the faust agent that folds sensor events into
doubles and sanctions, a batch at a time.

A batch is planned by the pure :func:`processors.core.planning.plan_batch`; the agent
only carries the plan out, in an order that loses nothing across a crash or a rebalance:

1. the touched doubles are written to the table, whose changelog is the ``doubles``
   topic, in the same step as the plan, so a revocation cannot fall between the
   ownership check and the writes;
2. ledger entries, blacklist updates, dead letters and sanctions are sent, and the
   broker's acknowledgement of all of it is awaited;
3. only then does each source partition's position (and watermark) move on, written
   to the ``positions`` table, unless a rebalance began meanwhile.

A crash before 3 re-delivers the batch: events already in a double are duplicates,
and their citizens' doubles, held ledger, periods and sanction state are sent again.

Its state (positions in flight, rejections, the outbox) lives in a :class:`FoldAgent`,
one per app; what it needs from outside comes in a :class:`Deps`. :func:`register` puts
it on an app: its agent on the sensor topics, its timer, its revocation hook.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from faust.exceptions import ConsumerNotStarted

from processors.core.plan import Folding, Hole, Plan, Position, Source
from processors.core.planning import plan_batch
from processors.core.progress import Progress
from processors.core.validation import Rejection
from processors.engine.app import ProcessorApp
from processors.engine.faust_patches import (
    aiokafka_producer,
    commit_offsets,
    processing,
    write_store_only,
)
from processors.engine.outbox import Outbox, Started, add_outputs, incoming
from processors.engine.store import Record, land_when_sent
from schemas import dead_letters
from schemas.codec import DOUBLE, encode
from schemas.registry_client import CachedResolver
from schemas.topics import Topics

log = logging.getLogger(__name__)
FAULT_EXIT_CODE = 70

# The names the module-level agent and timer once had; faust logs them.
AGENT_NAME = "processors.agents.harvest"
TIMER_NAME = "processors.agents.keep_positions"


class BatchMetrics(Protocol):
    """Where the agent's figures go (``moisson.metrics.ProcessorMetrics``, passed in by
    the entry point)."""

    dead_letters: Any  # a Prometheus counter labelled by reason
    lag: Any  # a gauge per source partition, with ``set_all(lag)``

    @property
    def observe_batch(self) -> Callable[..., None]:
        """Called once per batch with its figures (consumed, applied, rejected...)."""


@dataclass(frozen=True)
class Deps:
    """What the harvester needs from outside, fixed for a worker's life."""

    folding: Folding  # the kinds, the rules, the ethics toggles, the limits, the horizon
    topics: Topics
    metrics: BatchMetrics
    batch_size: int = 1000  # most events per batch
    batch_within_s: float = 0.05  # longest wait to fill one
    seek_every_s: float = 1.0  # least time between two seeks of one partition
    stall_s: float = 15.0  # stuck this long below the high-water: sought back
    gap_seeks: int = 5  # seeks at one gap before its range is dead-lettered
    fault: str = ""  # test only: "exit-before-sanction" (the crash drills)


class FoldAgent:
    """One app's harvester: it carries out the batches :func:`plan_batch` plans."""

    agent: Any = None  # the faust agent, once registered

    def __init__(self, app: ProcessorApp, deps: Deps) -> None:
        self.app, self.deps = app, deps
        self.folding, self.topics = deps.folding, deps.topics
        self.doubles, self.positions = app.doubles, app.positions
        self.metrics = deps.metrics
        self.rejections: Counter[str] = Counter()
        self.progress = Progress(
            seek_every_s=deps.seek_every_s,
            stall_s=deps.stall_s,
            give_up_after=deps.gap_seeks,
        )
        self.outbox: Outbox = Outbox(lambda: aiokafka_producer(app))
        #: doubles staged in the local store, per partition, until their batch is sealed
        self.landing: dict[int, list[Record]] = {}

    def position_of(self, src: Source) -> Position:
        """Where ``src`` stands (offset 0 and no watermark for a partition never applied):
        as the last batch planned left it, which may not be written yet."""
        return self.progress.stands(src, self.app.stored_position)

    def floor_of(self, partition: int) -> datetime | None:
        """The lowest durable watermark of the partition's sensor sources; None while one
        of them has none (a silent source holds eviction back)."""
        lowest = None
        for topic in self.folding.kinds:
            wm = self.progress.durable_watermark((topic, partition), self.app.stored_position)
            if wm is None:
                return None
            lowest = wm if lowest is None else min(lowest, wm)
        return lowest

    def sent_now(self) -> list[asyncio.Future[Any]]:
        """Schedule everything added to the outbox; the futures of its acknowledgements
        (the table tracks those of its changelog, the doubles topic)."""
        out = []
        for (topic, partition), fut, count in self.outbox.seal():
            if topic == self.topics.doubles:
                self.doubles.track(fut)
                staged, store = self.landing.get(partition), self.doubles.local_store
                if staged is not None and store is not None:
                    land_when_sent(store, partition, staged[:count], fut)
                    del staged[:count]
            out.append(fut)
        return out

    async def flush_outputs(self, sent: Sequence[Any] = ()) -> None:
        """Wait until the broker acknowledged ``sent`` and every table write so far; the
        watermarks written before are durable from then on."""
        written = self.progress.unflushed()
        pending = [*sent, *self.doubles.unsent, *self.positions.unsent]
        if pending:
            await asyncio.gather(*pending)
        self.progress.flushed(written)

    async def harvest(self, stream: Any) -> AsyncIterator[int]:
        """Fold sensor events into their citizens' doubles, a batch at a time (the agent).

        Yields how many events each batch held (``test_context().put`` waits for it).
        """
        size, within = self.deps.batch_size, self.deps.batch_within_s
        finishing: asyncio.Future[Plan] | None = None
        try:
            async for events in stream.take_events(size, within=within):
                # Pipelined: this batch is planned and sent while the previous one's
                # sends are still being acknowledged; positions are written in order.
                started = await self.start_batch(events)
                if finishing is not None:
                    await finishing
                finishing = asyncio.ensure_future(self.finish_batch(started)) if started else None
                yield len(events)
        finally:
            if finishing is not None:
                await finishing

    async def start_batch(self, events: Sequence[Any]) -> Started | None:
        """Plan the batch, write its doubles to the store and schedule every send, in one
        step; None when a rebalance is under way (its events come back)."""
        if isinstance(self.folding.resolver, CachedResolver):
            # Registry mode: the batch's new schema ids, looked up off the loop, before
            # the rebalance check below (which must share one step with the writes).
            await self.folding.resolver.prefetch(e.message.value for e in events)
        app = self.app
        epoch = app.revocations
        if app.rebalancing:
            # faust's flag, from a revocation until recovery ends ("Worker ready"): a
            # revocation waits for the table writes made so far, and a table partition
            # being recovered must not be written (the recovery would end on stale values).
            log.info("a batch taken during a rebalance is left to be re-delivered")
            return None
        batch = [incoming(e) for e in events]
        started_at = time.perf_counter()

        def lookup(citizen: str, index: int) -> Any:
            with processing(events[index]):  # RocksDB keeps one store per partition
                return self.doubles.get(citizen)

        plan = plan_batch(
            batch,
            self.position_of,
            lookup,
            self.folding,
            self.app.assigned_sources(),
            self.floor_of,
            self.app.partitions_of,
        )
        self.rejections.update(plan.rejections)
        planned_at = time.perf_counter()
        self.count(batch, plan, planned_at - started_at)
        self.progress.planned_to(plan.gate.positions)
        for citizen, (double, index) in plan.doubles.items():
            self.write_double(citizen, double, events[index], plan.encoded.get(citizen))
        if self.deps.fault == "exit-before-sanction" and any(
            s["active"] for _, s in plan.sanctions
        ):
            await self.inject_exit_before_sanction()
        for citizen, (double, index) in plan.republish.items():
            self.write_double(citizen, double, events[index])
        add_outputs(self.outbox, self.topics, batch, plan)
        sent = self.sent_now()
        log.debug(
            "batch of %d: planned in %.1f ms, %d sends scheduled in %.1f ms",
            len(events),
            (planned_at - started_at) * 1e3,
            len(sent),
            (time.perf_counter() - planned_at) * 1e3,
        )
        return Started(events, plan, sent, epoch)

    def count(self, batch: Sequence[Any], plan: Plan, seconds: float) -> None:
        """The batch's figures, once per batch (a re-delivered event is a duplicate)."""
        self.metrics.observe_batch(
            consumed=Counter(m.topic for m in batch),
            applied=plan.gate.applied - sum(plan.rejections.values()),
            rejected=plan.rejections,
            dead_letters=Counter(d.reason for d in plan.dead_letters),
            sanctions=Counter(
                "blacklisted" if s["active"] else "cleared" for _, s in plan.sanctions
            ),
            ledger=len(plan.ledger),
            seconds=seconds,
        )

    async def finish_batch(self, started: Started) -> Plan:
        """Wait until the broker acknowledged the batch's sends, then move its positions
        on (unless a rebalance began meanwhile) and seek back to its holes."""
        events, plan, epoch = started.events, started.plan, started.epoch
        await self.flush_outputs(started.sent)
        if self.app.revocations != epoch:
            # A rebalance began while this batch was sent: its partitions may belong to
            # another worker now. Its events will be re-delivered and found applied.
            log.info("a rebalance began during a batch; its positions are left unwritten")
            return plan
        now = time.monotonic()
        self.progress.delivered_at(plan.gate.seen, now)
        for src, (stands, index) in plan.gate.positions.items():
            self.write_position(src, stands, events[index])
            self.progress.moved(src, stands.next, now)
        for src, hole in plan.gate.holes.items():
            await self.on_hole(src, hole, events[hole.index], now)
        for src, offset in plan.gate.waiting.items():
            if self.progress.on_wait(src, offset, now) and self.app.assigned_sources() is not None:
                log.info(
                    "%s[%d]: waiting at %d for the schema registry; seeking back", *src, offset
                )
                await self.app.seek(src, offset)
        return plan

    def write_double(
        self, citizen: str, double: Any, event: Any, value: bytes | None = None
    ) -> None:
        """Write ``double`` to the table's store and add it to the outbox for ``doubles``,
        the table's changelog, in ``event``'s partition.

        faust's own table write sends the changelog through ``send_soon`` (about 120 µs a
        message here); a record in a batch costs a few.
        """
        if value is None:  # the planner encodes what it writes (to bound its size)
            value = encode(DOUBLE, double)
        partition, key = event.message.partition, citizen.encode()
        store = self.doubles.local_store
        if store is not None:  # the bytes sent, on disk once the broker has them
            store.stage(partition, key, value)
            self.landing.setdefault(partition, []).append((key, value))
        else:
            write_store_only(self.doubles, event, citizen, double)
        self.outbox.add(self.topics.doubles, partition, key, value)

    def write_position(self, src: Source, stands: Position, event: Any) -> None:
        """Write where ``src`` stands, in ``event``'s partition (beside its doubles)."""
        self.app.store_position(src, stands, event)
        self.progress.wrote(src, stands)

    async def on_hole(self, src: Source, hole: Hole, found: Any, now: float) -> None:
        """Seek back to a hole (rate-limited); after too many seeks, dead-letter the
        range as missing (compaction, transaction markers, retention) and go on."""
        progress = self.progress
        action = progress.on_hole(src, hole.expected, hole.found, now)
        if action == "seek":
            log.info(
                "%s[%d]: offset %d expected, %d delivered; seeking back",
                *src,
                hole.expected,
                hole.found,
            )
            await self.app.seek(src, hole.expected)
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
            self.outbox.add(self.topics.dlq, src[1], None, b"", headers)
            self.metrics.dead_letters.labels(Rejection.OFFSETS_MISSING.value).inc()
            await self.flush_outputs(self.sent_now())
            stands = Position(hole.found, self.app.stored_position(src).watermark)
            self.write_position(src, stands, found)
            progress.skipped_to(src, stands, now)
            await self.app.seek(src, hole.found)

    async def inject_exit_before_sanction(self) -> None:
        """Test-only fault (``PROCESSOR_FAULT=exit-before-sanction``): persist a
        blacklisting's double (written to the table just before) and exit before its
        sanction is sent."""
        await self.flush_outputs(self.sent_now())
        log.warning("fault injection: exiting between a blacklisting and its sanction")
        logging.shutdown()
        os._exit(FAULT_EXIT_CODE)

    async def keep_positions(self) -> None:
        """Seek a partition whose position is stuck below its high-water mark, commit the
        positions to the consumer group (so Kafka's lag tools tell the truth), log lag
        (the app's timer, every second)."""
        app, progress = self.app, self.progress
        if app.rebalancing:
            return
        with suppress(ConsumerNotStarted):
            consumer = app.consumer
            owned = [tp for tp in consumer.assignment() if tp.topic in self.folding.kinds]
            now = time.monotonic()
            stands = {tp: self.app.stored_position((tp.topic, tp.partition)).next for tp in owned}
            for tp, at in stands.items():
                high = consumer.highwater(tp)
                progress.seen_highwater((tp.topic, tp.partition), at, high)
                if progress.stalled((tp.topic, tp.partition), at, high, now):
                    log.info("%s[%d]: stuck at %d below high-water %s; seeking", *tp, at, high)
                    await self.app.seek((tp.topic, tp.partition), at)
            fresh = {tp: at for tp, at in stands.items() if progress.to_commit(tp, at)}
            if fresh:
                await self.flush_outputs()  # never commit a position the changelog may lack
                await commit_offsets(consumer, fresh)
                for tp, at in fresh.items():
                    progress.committed_to(tp, at)
            self.metrics.lag.set_all(progress.lag)
            progress.maybe_log_lag(log, now)

    async def forget_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Partitions given up: their positions are another worker's to keep now (the
        app's ``on_partitions_revoked`` handler)."""
        revoked = args[0] if args else kwargs.get("revoked", ())
        self.progress.forget({(tp.topic, tp.partition) for tp in revoked})
        self.progress.replan()


def register(app: ProcessorApp, deps: Deps) -> FoldAgent:
    """Register a harvester on ``app`` (made by :func:`processors.engine.app.create_app`): its
    agent consumes the sensor topics, its timer keeps positions every second, and it
    forgets revoked partitions. Its state lives in the returned :class:`FoldAgent`."""
    harvester = FoldAgent(app, deps)
    harvester.agent = app.agent(app.sensor_topics, name=AGENT_NAME)(harvester.harvest)
    app.timer(1.0, name=TIMER_NAME)(harvester.keep_positions)
    app.on_partitions_revoked.connect(harvester.forget_revoked)  # type: ignore[arg-type]
    return harvester
