"""Pins of the faust internals the worker's state relies on (processors/engine/store.py,
processors/engine/faust_patches.py): if a faust upgrade moves one, a test here says which."""

from __future__ import annotations

import inspect

from faust.stores.rocksdb import Store
from faust.tables.base import Collection
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer


def test_recovery_reads_changelogs_up_to_the_consumers_highwaters():
    # set_highwaters replaces consumer.highwaters: recovery must still ask it
    assert "consumer.highwaters(" in inspect.getsource(Recovery._build_highwaters)
    assert inspect.iscoroutinefunction(Consumer.highwaters)
    # ...and ask it before it reads the stores' offsets (the app forgets stale ones then)
    source = inspect.getsource(Recovery._restart_recovery.fun)
    assert 0 < source.index("T(self._build_highwaters)") < source.index("T(self._build_offsets)")


def test_a_changelog_acknowledgement_saves_the_offset_through_the_store():
    # LocalStore ignores set_persisted_offset: the offset lands with its value instead
    assert "set_persisted_offset(" in inspect.getsource(Collection._on_changelog_sent)


def test_the_rocksdb_store_has_what_the_local_store_overrides_and_uses():
    for name in (
        "_get",
        "_set",
        "_del",
        "_contains",
        "_iteritems",
        "_db_for_partition",
        "set_persisted_offset",
        "persisted_offset",
        "apply_changelog_batch",
        "assign_partitions",
        "revoke_partitions",
        "partition_path",
    ):
        assert callable(getattr(Store, name, None)), name
    assert Store.offset_key == b"__faust\0offset__"
    source = inspect.getsource(Store.__init__)
    assert "self._dbs = {}" in source and "self._key_index" in source


def test_tables_make_their_store_from_a_url():
    # TrackedTable._new_store_by_url picks LocalStore for rocksdb://
    assert "_new_store_by_url(" in inspect.getsource(Collection._new_store)
