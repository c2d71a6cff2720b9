"""The worker's local state: faust's RocksDB store, holding only what the changelog has.

faust's RocksDB store writes a value to disk when the table is written, and the
changelog offset it has read up to when the broker acknowledges the changelog record.
After a ``kill -9`` between the two, the disk holds a value the changelog never got; a
restarted worker would recover its positions from disk, skip the events they cover,
and their doubles would never reach the sink.

Here a write is *staged* in memory and lands on disk with its changelog offset, in one
RocksDB write batch, once the broker has it. The disk is then always a prefix of the
changelog, and a restart reads only the changelog's tail, as a memory store recovering
from the whole changelog would end up. (faust's own ``set_persisted_offset`` is a no-op
here: it would save an offset before its value.)
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import rocksdict
from faust.streams import current_event

from processors.engine.faust_patches import PatchedRocksStore

log = logging.getLogger(__name__)

#: A staged write: its key and its value (None: a deletion).
Record = tuple[bytes, bytes | None]


def land_when_sent(
    store: LocalStore, partition: int, records: Sequence[Record], sent: asyncio.Future[Any]
) -> None:
    """Land ``records`` once ``sent``, the changelog batch holding exactly them, in order,
    is acknowledged; a failed send lands nothing."""

    def landed(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None or not records:
            return
        # aiokafka gives a batch's base offset; faust's message future, its own offset
        store.land(partition, records, fut.result().offset + len(records) - 1)

    sent.add_done_callback(landed)


class LocalStore(PatchedRocksStore):
    """RocksDB per table partition, written on the changelog's acknowledgement."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: partition -> key -> newest value not yet on disk (None: deleted)
        self.staged: dict[int, dict[bytes, bytes | None]] = defaultdict(dict)
        self.last_staged: tuple[int, bytes, bytes | None] | None = None

    # -- writes ------------------------------------------------------------------

    def stage(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Hold ``value`` as the key's newest until :meth:`land` puts it on disk."""
        self.staged[partition][key] = value
        self.remember_partition(key, partition)
        self.last_staged = (partition, key, value)

    def take_last(self) -> tuple[int, Record]:
        """The write the table just staged (its changelog record was sent just before)."""
        assert self.last_staged is not None, "no write staged"
        partition, key, value = self.last_staged
        self.last_staged = None
        return partition, (key, value)

    def land(self, partition: int, records: Sequence[Record], last_offset: int) -> None:
        """Put ``records``, which the changelog holds up to ``last_offset``, on disk with
        that offset, atomically; a key staged again since stays staged.

        A partition given up meanwhile is left alone: its next owner recovers from the
        changelog, and so would this worker from the offset it has on disk.
        """
        db = self.db_of(partition)
        if db is None:
            return
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.offset_key, str(last_offset).encode())
        db.write(batch)
        staged = self.staged[partition]
        for key, value in records:
            if key in staged and staged[key] is value:
                del staged[key]

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        """Ignored: offsets land with their values (:meth:`land`, recovery)."""

    def apply_changelog_batch(
        self,
        batch: Iterable[Any],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Recovery: each partition's records and its offset in one write batch."""
        per_partition: dict[int, list[Record]] = defaultdict(list)
        last: dict[int, int] = {}
        for event in batch:
            msg = event.message
            per_partition[msg.partition].append((msg.key, msg.value))
            last[msg.partition] = max(msg.offset, last.get(msg.partition, -1))
        for partition, records in per_partition.items():
            self.open_db(partition)  # recovery opens the partition
            self.land(partition, records, last[partition])

    def write(self, key: bytes, value: bytes | None) -> None:
        self.stage(self.partition_of(key), key, value)

    def partition_of(self, key: bytes) -> int:
        event = current_event()
        if event is not None:
            return int(event.message.partition)
        return self.last_partition_of(key)

    # -- reads: the staged value first -------------------------------------------

    def staged_for(self, key: bytes) -> tuple[bool, bytes | None]:
        event = current_event()
        partitions = [event.message.partition] if event is not None else list(self.staged)
        for partition in partitions:
            staged = self.staged.get(partition)
            if staged and key in staged:
                return True, staged[key]
        return False, None

    def read(self, key: bytes) -> bytes | None:
        found, value = self.staged_for(key)
        return value if found else self.disk_get(key)

    def holds(self, key: bytes) -> bool:
        found, value = self.staged_for(key)
        return value is not None if found else self.disk_contains(key)

    def items_now(self) -> Iterator[tuple[bytes, bytes]]:
        staged = {k: v for p in self.active_partitions() for k, v in self.staged[p].items()}
        for key, value in self.disk_items():
            if key not in staged:
                yield key, value
        for key, newest in staged.items():
            if newest is not None:
                yield key, newest

    def active_partitions(self) -> list[int]:
        topic = self.table.changelog_topic_name  # type: ignore[attr-defined]
        actives = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        return [p for p in self.staged if p in actives]

    def forget_stale(self, ends: Mapping[Any, int | None]) -> None:
        """Forget a partition's state when its changelog ends (``ends``, per changelog
        ``TP``) before the offset it was read to: a changelog made anew (a new broker, a
        deleted topic) would otherwise be recovered onto stale state."""
        topics = self.table.changelog_topic.topics
        for tp, end in ends.items():
            if tp.topic not in topics or not self.is_open(tp.partition):
                continue
            had = self.persisted_offset(tp)
            if had is not None and had >= (end or 0):
                log.warning(
                    "%s[%d] ends at %s, before the offset %d read into the local state: "
                    "that state is from another changelog; restoring from this one",
                    tp.topic,
                    tp.partition,
                    end,
                    had,
                )
                self.forget(tp.partition)

    def forget(self, partition: int) -> None:
        """Delete a partition's local state (it is reopened empty)."""
        db = self.drop_db(partition)
        if db is not None:
            db.close()
        self.staged.pop(partition, None)
        shutil.rmtree(self.partition_path(partition), ignore_errors=True)
        self.open_db(partition)

    def revoke_partitions(self, table: Any, tps: set[Any]) -> None:
        """Given up: their staged writes go too (the changelog has what was sent)."""
        super().revoke_partitions(table, tps)
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self.staged.pop(tp.partition, None)
