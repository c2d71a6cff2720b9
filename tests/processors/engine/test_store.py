"""The local store: RocksDB holds only what the changelog acknowledged, with its offset,
so a worker killed between a write and its acknowledgement restarts on a changelog
prefix (and reads the tail), never on a value the changelog lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from moisson.settings import Settings
from processors.engine.app import create_app
from processors.engine.faust_patches import processing
from processors.engine.store import LocalStore, land_when_sent


class Event:
    """What the store reads of the event being processed: its partition."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


def event(partition: int) -> Any:
    return Event(partition)


def positions_store(data_dir: Path) -> tuple[Any, LocalStore]:
    """The positions table's store, its partitions open as on their assignment."""
    settings = Settings().replace(processor={"data_dir": data_dir})
    app = create_app(settings)
    store = app.positions.data
    assert isinstance(store, LocalStore)
    for partition in range(6):
        store._db_for_partition(partition)
    return app, store


def tp(app: Any, partition: int) -> TP:
    return TP(app.positions.changelog_topic_name, partition)


def on_disk(store: LocalStore, partition: int, key: bytes) -> bytes | None:
    return store._db_for_partition(partition).get(key)


def test_a_staged_write_is_read_back_but_not_on_disk(tmp_path: Path):
    _, store = positions_store(tmp_path)
    store.stage(1, b"k", b"v1")
    with processing(event(1)):
        assert store._get(b"k") == b"v1"
        assert store._contains(b"k")
    assert on_disk(store, 1, b"k") is None
    store.stage(1, b"gone", None)
    with processing(event(1)):
        assert not store._contains(b"gone")


def test_land_puts_values_and_offset_together_and_keeps_a_newer_staging(tmp_path: Path):
    app, store = positions_store(tmp_path)
    first = b"v1"
    store.stage(2, b"k", first)
    store.stage(2, b"other", b"o1")
    store.land(2, [(b"k", first), (b"other", b"o1")], 41)
    assert on_disk(store, 2, b"k") == b"v1"
    assert store.persisted_offset(tp(app, 2)) == 41
    assert store.staged[2] == {}, "landed: nothing left staged"

    store.stage(2, b"k", b"v2")
    store.stage(2, b"k", b"v3")  # staged again before v2's acknowledgement
    store.land(2, [(b"k", b"v2")], 42)
    assert on_disk(store, 2, b"k") == b"v2"
    with processing(event(2)):
        assert store._get(b"k") == b"v3", "the newer write is still the one read"


def test_fausts_own_offset_write_is_ignored(tmp_path: Path):
    app, store = positions_store(tmp_path)
    store.land(0, [(b"k", b"v")], 5)
    store.set_persisted_offset(tp(app, 0), 99)  # what faust does on every changelog ack
    assert store.persisted_offset(tp(app, 0)) == 5


def test_a_write_never_acknowledged_is_not_there_after_a_restart(tmp_path: Path):
    _, store = positions_store(tmp_path)
    store.stage(3, b"k", b"acked")
    store.land(3, [(b"k", b"acked")], 7)
    store.stage(3, b"k", b"never acked")  # the worker dies before the broker answers
    store._dbs.clear()  # closed, as faust does on stop
    del store
    app, again = positions_store(tmp_path)  # a new worker, the same data dir
    assert on_disk(again, 3, b"k") == b"acked"
    assert again.persisted_offset(tp(app, 3)) == 7, "recovery reads on from offset 8"


def test_recovery_writes_each_partitions_records_with_its_last_offset(tmp_path: Path):
    app, store = positions_store(tmp_path)

    def record(partition: int, offset: int, key: bytes, value: bytes | None) -> Any:
        return SimpleNamespace(
            message=SimpleNamespace(partition=partition, offset=offset, key=key, value=value)
        )

    store.land(0, [(b"old", b"x")], 1)
    batch = [record(0, 2, b"a", b"1"), record(0, 3, b"old", None), record(1, 9, b"b", b"2")]
    store.apply_changelog_batch(batch, lambda k: k, lambda v: v)
    assert on_disk(store, 0, b"a") == b"1"
    assert on_disk(store, 0, b"old") is None
    assert on_disk(store, 1, b"b") == b"2"
    assert (store.persisted_offset(tp(app, 0)), store.persisted_offset(tp(app, 1))) == (3, 9)


def test_revoked_partitions_drop_their_staging_and_late_acks_land_nothing(tmp_path: Path):
    app, store = positions_store(tmp_path)
    store.land(4, [(b"k", b"v0")], 0)
    store.stage(4, b"k", b"v1")
    store.revoke_partitions(app.positions, {tp(app, 4)})
    assert 4 not in store.staged
    store.land(4, [(b"k", b"v1")], 1)  # its acknowledgement comes after the revocation
    assert store.persisted_offset(tp(app, 4)) == 0
    assert on_disk(store, 4, b"k") == b"v0"


@pytest.mark.parametrize("failed", [False, True])
async def test_land_when_sent_counts_from_the_batch_base_offset(tmp_path: Path, failed: bool):
    app, store = positions_store(tmp_path)
    records = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    for key, value in records:
        store.stage(5, key, value)
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    land_when_sent(store, 5, records, sent)
    if failed:
        sent.set_exception(RuntimeError("broker gone"))
    else:
        sent.set_result(SimpleNamespace(offset=10))  # aiokafka: the batch's base offset
    await asyncio.sleep(0)
    expected = None if failed else 12
    assert store.persisted_offset(tp(app, 5)) == expected
    assert (on_disk(store, 5, b"c") is None) == failed


def test_state_read_from_another_changelog_is_forgotten(tmp_path: Path):
    """A broker made anew (or the topic deleted) gives a changelog that ends before the
    offset on disk: that partition's state goes, the other's stays."""
    app, store = positions_store(tmp_path)
    store.land(0, [(b"k", b"stale")], 10)
    store.land(1, [(b"k", b"kept")], 3)
    other = TP("another-topic", 1)
    store.forget_stale({tp(app, 0): 5, tp(app, 1): 10, other: 0})
    assert store.persisted_offset(tp(app, 0)) is None
    assert on_disk(store, 0, b"k") is None
    assert store.persisted_offset(tp(app, 1)) == 3
    assert on_disk(store, 1, b"k") == b"kept"
