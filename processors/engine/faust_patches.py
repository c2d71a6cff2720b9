"""The faust internals the harvester relies on, in one place, each with why.

A faust upgrade may move any of these; this module is where to look. (The app also
overrides four private methods, in :mod:`processors.engine.app`: ``App._new_consumer``,
``App._on_partitions_revoked``, ``Table._verify_source_topic_partitions`` and
``Table._new_store_by_url``; and :mod:`processors.engine.store` overrides the RocksDB store's
``_get``, ``_set``, ``_del``, ``_contains``, its iterators and ``set_persisted_offset``.)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

log = logging.getLogger(__name__)

# faust's consumer.suspend_flow is an asyncio.Event: its wait() is known by its code.
SUSPEND_WAIT = asyncio.Event.wait.__code__


@contextmanager
def processing(event: Any) -> Iterator[None]:
    """Make ``event`` the one tables see as being processed (it picks the partition).

    Only faust's context variable is set, in this task: ``Stream.current_event`` belongs
    to the take buffer, which fills it in another task while a batch is being written.
    """
    # private: faust's tables read the current event from it to pick the partition
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def aiokafka_producer(app: Any) -> Any:
    """The started aiokafka producer under faust's."""
    # private: faust offers no record batches; the outbox fills aiokafka's own
    return app.producer._ensure_producer()


async def commit_offsets(consumer: Any, offsets: Mapping[Any, int]) -> None:
    """Commit ``offsets`` (the harvester's positions) to the consumer group."""
    # private: faust commits only offsets it acked, and the sensor topics are not acked
    await consumer._commit_offsets(offsets, start_new_transaction=False)


def set_read_offsets(consumer: Any, read_offsets: dict[Any, Any]) -> None:
    """Replace the consumer's read offsets (see :class:`processors.engine.app.ReadOffsets`)."""
    # private: faust drops fetched records below them, which swallows re-fetched ones
    consumer._read_offset = read_offsets


def set_wait_first(consumer: Any, wait_first: Callable[..., Any]) -> None:
    """Make ``wait_first`` the consumer's (see :func:`processors.engine.app.wait_first_fast`)."""
    # a Service method faust's fetcher calls per message: four tasks each time
    consumer.wait_first = types.MethodType(wait_first, consumer)


def set_fetch_wait(consumer: Any, ms: int) -> None:
    """Make the worker's aiokafka consumer hold a fetch at most ``ms`` milliseconds
    when the broker has nothing new. faust fixes 1500; a broker that answers a held
    fetch only when its wait ends, not when data arrives (Tansu 0.6: a record sent
    into an idle topic reached a consumer after 0.38 s at the median with 1500 ms, 0.01 s
    with 50 ms), adds up to that much latency to every event."""
    # private: AIOKafkaConsumerThread._create_consumer passes fetch_max_wait_ms=1500, and
    # aiokafka's consumer reads its _fetch_max_wait_ms when start() builds the Fetcher
    thread = consumer._thread
    create = thread._create_consumer

    def created(loop: Any) -> Any:
        made = create(loop=loop)
        made._fetch_max_wait_ms = ms
        return made

    thread._create_consumer = created


def set_highwaters(
    consumer: Any,
    ends: Callable[[Mapping[Any, int | None]], Mapping[Any, int | None]],
    on_ends: Callable[[Mapping[Any, int | None]], None],
) -> None:
    """Make the consumer's ``highwaters`` (what faust's recovery reads changelogs up
    to) pass ListOffsets' answer through ``ends`` (:mod:`processors.engine.ends`), off the loop,
    and tell ``on_ends`` before recovery reads the stores' offsets."""
    # private: faust's Recovery calls consumer.highwaters, which asks ListOffsets only,
    # then reads each store's persisted offset (Recovery._build_offsets)
    reported = consumer.highwaters

    async def highwaters(*partitions: Any) -> Any:
        found = await asyncio.to_thread(ends, await reported(*partitions))
        on_ends(found)
        return found

    consumer.highwaters = highwaters


def set_serializers(table: Any, key: str, value: str) -> None:
    """Make the table write its changelog with these serializers."""
    # faust derives a table's serializers from model types only (JSON otherwise)
    table.key_serializer = key
    table.value_serializer = value


def shutdown_on_signal(worker: Any, signum: int) -> None:
    """Stop ``worker`` the way faust's own SIGTERM handler does (once, however often
    called): the app's services, then the event loop."""
    # private: mode offers no public way in; stop() alone would leave the loop running
    worker._schedule_shutdown(signal.Signals(signum))


def bound_consumer_stop(consumer: Any, timeout: float) -> None:
    """Make the stop of ``consumer``'s thread end within ``timeout`` seconds, and let a
    failed one not hold the worker.

    When the broker is gone, aiokafka's ``Fetcher.close`` re-raises the CancelledError of
    a fetch that was backing off after a failed request; faust's consumer thread then
    never tells mode that it has shut down, and the worker waits mode's
    ``shutdown_timeout`` (60 s) for it.
    """
    # private: faust's consumer thread (the ServiceThread running aiokafka's consumer)
    bounded(consumer._thread, "on_thread_stop", Budget(timeout), "the Kafka consumer's stop")


def bound_producer_stop(producer: Any, timeout: float) -> None:
    """Give the steps of the producer's stop (the app's flush, the buffer's, aiokafka's
    own stop, which flushes again) ``timeout`` seconds in all, from the first.

    With the broker gone, each waits for messages that cannot be delivered until
    ``producer_request_timeout`` (faust's default: 20 minutes).
    """
    budget = Budget(timeout)
    bounded(producer, "flush", budget, "the producer's flush")
    bounded(producer.buffer, "flush", budget, "the producer buffer's flush")
    bounded(producer, "on_stop", budget, "the producer's stop")


class Budget:
    """Seconds shared by several waits; the clock starts with the first."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until: float | None = None

    def left(self) -> float:
        now = time.monotonic()
        if self.until is None:
            self.until = now + self.seconds
        return max(0.0, self.until - now)


def bounded(owner: Any, name: str, budget: Budget, what: str) -> None:
    """Replace the coroutine method ``owner.name`` (on this instance only) by one that
    returns when ``budget`` runs out at the latest and logs, rather than raises, a
    failure; a cancellation from outside still cancels it. Bounding twice wraps once."""
    method = getattr(owner, name)
    if getattr(method, "bounded", False):
        return

    async def within(*args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(method(*args, **kwargs), budget.left())
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this stop itself is being cancelled: not ours to swallow
            log.warning("%s did not end cleanly (cancelled); going on", what)
        except TimeoutError:
            log.warning(
                "%s did not end within %gs (is Kafka gone?); going on", what, budget.seconds
            )
        except Exception as exc:  # the broker's error: the stop goes on
            log.warning("%s did not end cleanly (%r); going on", what, exc)
        return None

    within.bounded = True  # type: ignore[attr-defined]
    setattr(owner, name, within)
