"""The faust internals the harvester relies on, in one place, each with why.

A faust upgrade may move any of these; this module is where to look. (The app also
overrides four private methods, in :mod:`processors.app`: ``App._new_consumer``,
``App._on_partitions_revoked``, ``Table._verify_source_topic_partitions`` and
``Table._new_store_by_url``; and :mod:`processors.store` overrides the RocksDB store's
``_get``, ``_set``, ``_del``, ``_contains``, its iterators and ``set_persisted_offset``.)
"""

from __future__ import annotations

import asyncio
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

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


def set_highwaters(
    consumer: Any,
    ends: Callable[[Mapping[Any, int | None]], Mapping[Any, int | None]],
    on_ends: Callable[[Mapping[Any, int | None]], None],
) -> None:
    """Make the consumer's ``highwaters`` (what faust's recovery reads changelogs up
    to) pass ListOffsets' answer through ``ends`` (:mod:`processors.ends`), off the loop,
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
