"""Every touch of faust's (and mode's) private API, in one place, each with why; the
rest of the processor calls the public names defined here.

A faust upgrade may move any of these; this module is where to look, and
``tests/processors/engine/test_faust_patches.py`` and ``test_faust_store_internals.py``
pin what it relies on. Three classes turn private methods into public hooks:
:class:`PatchedApp` (``App._new_consumer``, ``App._on_partitions_revoked``),
:class:`PatchedTable` (``Table._verify_source_topic_partitions``,
``Table._new_store_by_url``) and :class:`PatchedRocksStore` (the RocksDB store's
``_get``, ``_set``, ``_del``, ``_contains``, iterators, size and partition databases).
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

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event
from mode import Service
from mode.services import WaitResults

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
    """Replace the consumer's read offsets (see :class:`ReadOffsets`)."""
    # private: faust drops fetched records below them, which swallows re-fetched ones
    consumer._read_offset = read_offsets


def set_wait_first(consumer: Any, wait_first: Callable[..., Any]) -> None:
    """Make ``wait_first`` the consumer's (see :func:`wait_first_fast`)."""
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


class ReadOffsets(dict[Any, Any]):
    """faust's read offsets, with none kept for the sensor topics.

    faust drops a fetched record below the partition's read offset and books an
    acknowledged gap when offsets jump (``transport/consumer.py:1207-1230``); after a
    seek made while a fetch is in flight, that swallows the re-fetched records. The
    harvester orders and deduplicates sensor records by its own positions instead.
    """

    def __init__(self, unfiltered: frozenset[str]) -> None:
        super().__init__()
        self.unfiltered = unfiltered

    def __missing__(self, tp: Any) -> None:
        return None

    def __setitem__(self, tp: Any, offset: Any) -> None:
        super().__setitem__(tp, None if tp.topic in self.unfiltered else offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


async def wait_first_fast(consumer: Any, *coros: Any, timeout: Any = None) -> Any:
    """faust's fetcher hands every message over with ``wait_first(callback(message),
    suspend_flow.wait())`` (``transport/consumer.py:1220``): four tasks, a wait and three
    cancellations per message, about a seventh of the harvester's time in py-spy.

    When the flow is not suspended (and the consumer neither stopping nor crashed) the
    callback is awaited directly. It only puts the event in its channel's queue without
    blocking (``put_nowait_enhanced``), so it does not wait for a suspension to begin;
    if one begins meanwhile the event is delivered anyway, which the harvester's
    positions absorb (a re-delivery, or a hole it seeks back to). Any other call goes to
    faust's own ``wait_first``.
    """
    if (
        len(coros) == 2
        and timeout is None
        and getattr(coros[1], "cr_code", None) is SUSPEND_WAIT
        and not (consumer.suspend_flow.is_set() or consumer.should_stop)
    ):
        coros[1].close()
        return WaitResults([coros[0]], [await coros[0]], False)
    return await Service.wait_first(consumer, *coros, timeout=timeout)


class PatchedApp(faust.App):
    """faust's App with two private moments made public hooks."""

    def _new_consumer(self) -> Any:
        # private: the one place faust makes its consumer, before anything uses it
        consumer = super()._new_consumer()
        self.on_consumer_made(consumer)
        return consumer

    def on_consumer_made(self, consumer: Any) -> None:
        """Adjust the consumer faust just made (before it starts)."""

    async def _on_partitions_revoked(self, revoked: Any) -> None:
        # private: faust runs it as a revocation begins, before the tables give anything up
        await self.before_revocation(revoked)
        await super()._on_partitions_revoked(revoked)

    async def before_revocation(self, revoked: Any) -> None:
        """A revocation begins: the partitions are still this worker's."""


class PatchedTable(faust.Table):
    """faust's Table with its store factory and its partition check made public hooks."""

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        # private: right after start-up the consumer's metadata can list a changelog it
        # has just created with 0 partitions; faust then raises PartitionsMismatch from
        # the agent (seen in CI). Check again later instead: the count is declared here.
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return
        super()._verify_source_topic_partitions(source_topic)

    def _new_store_by_url(self, url: Any) -> Any:
        # private: the only way to give a table another store class than the URL's
        made = self.new_store(url)
        return made if made is not None else super()._new_store_by_url(url)

    def new_store(self, url: Any) -> Any:
        """A store of our own for ``url``, or None for faust's."""
        return None


def write_store_only(table: Any, event: Any, key: str, value: Any) -> None:
    """Write ``value`` into ``table``'s store in ``event``'s partition, without the
    changelog record a table write sends (the outbox sends it, in a record batch)."""
    # private in effect: faust's tables write their store (``Table.data``) only together
    # with the changelog; the store's mapping interface is what the table itself uses
    with processing(event):
        table.data[key] = value


class PatchedRocksStore(RocksDBStore):
    """faust's RocksDB store whose private reads and writes call public hooks, and whose
    partition databases are reachable by public names (``processors.engine.store``)."""

    # private: faust's Store routes every table access through these
    def _set(self, key: bytes, value: bytes | None) -> None:
        self.write(key, value)

    def _del(self, key: bytes) -> None:
        self.write(key, None)

    def _get(self, key: bytes) -> bytes | None:
        return self.read(key)

    def _contains(self, key: bytes) -> bool:
        return self.holds(key)

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        return self.items_now()

    def _iterkeys(self) -> Iterator[bytes]:
        for key, _ in self.items_now():
            yield key

    def _itervalues(self) -> Iterator[bytes]:
        for _, value in self.items_now():
            yield value

    def _size(self) -> int:
        return sum(1 for _ in self.items_now())

    # the hooks (a subclass reads and writes its own way)
    def write(self, key: bytes, value: bytes | None) -> None:
        raise NotImplementedError

    def read(self, key: bytes) -> bytes | None:
        return self.disk_get(key)

    def holds(self, key: bytes) -> bool:
        return self.disk_contains(key)

    def items_now(self) -> Iterator[tuple[bytes, bytes]]:
        return self.disk_items()

    # private: what is on disk, per partition, and which partition a key was last in
    def disk_get(self, key: bytes) -> bytes | None:
        return super()._get(key)

    def disk_contains(self, key: bytes) -> bool:
        return bool(super()._contains(key))

    def disk_items(self) -> Iterator[tuple[bytes, bytes]]:
        return super()._iteritems()

    def open_db(self, partition: int) -> Any:
        return self._db_for_partition(partition)

    def db_of(self, partition: int) -> Any:
        return self._dbs.get(partition)

    def drop_db(self, partition: int) -> Any:
        """Forget ``partition``'s database (the caller closes it); None if not open."""
        return self._dbs.pop(partition, None)

    def is_open(self, partition: int) -> bool:
        return partition in self._dbs

    def remember_partition(self, key: bytes, partition: int) -> None:
        self._key_index[key] = partition

    def last_partition_of(self, key: bytes) -> int:
        return int(self._key_index[key])
