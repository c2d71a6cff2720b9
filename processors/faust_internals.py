"""The faust internals the harvester relies on, in one place, each with why.

A faust upgrade may move any of these; this module is where to look. (The app also
overrides three private methods, in :mod:`processors.app`: ``App._new_consumer``,
``App._on_partitions_revoked`` and ``Table._verify_source_topic_partitions``.)
"""

from __future__ import annotations

import asyncio
import logging
import signal
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
    """Replace the consumer's read offsets (see :class:`processors.app.ReadOffsets`)."""
    # private: faust drops fetched records below them, which swallows re-fetched ones
    consumer._read_offset = read_offsets


def set_wait_first(consumer: Any, wait_first: Callable[..., Any]) -> None:
    """Make ``wait_first`` the consumer's (see :func:`processors.app.wait_first_fast`)."""
    # a Service method faust's fetcher calls per message: four tasks each time
    consumer.wait_first = types.MethodType(wait_first, consumer)


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
    thread = consumer._thread
    stop = thread.on_thread_stop
    if getattr(stop, "bounded", False):
        return

    async def on_thread_stop() -> None:
        try:
            await asyncio.wait_for(stop(), timeout)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this stop itself is being cancelled: not ours to swallow
            log.warning("the Kafka consumer did not stop cleanly (cancelled); going on")
        except Exception as exc:  # a timeout, or the broker's error: the stop goes on
            log.warning("the Kafka consumer did not stop cleanly (%r); going on", exc)

    on_thread_stop.bounded = True  # type: ignore[attr-defined]
    thread.on_thread_stop = on_thread_stop
