"""Bisecting a refused batch: the good records are written, each refused one is set
aside alone, transient failures are still retried, and a clean batch costs one write."""

from __future__ import annotations

import math
from collections.abc import Collection

import pytest

from moisson.metrics import SinkMetrics
from sinks.base import Sink, SinkBatch
from sinks.writes import Item, Refused, SinkStats, write_items, write_with_retry


class Refusing(Sink):
    """A database that refuses any write holding one of ``bad`` (by citizen id), and is
    away for the writes numbered in ``down`` (1-based)."""

    def __init__(self, bad: set[str], down: Collection[int] = ()) -> None:
        self.bad, self.down = bad, down
        self.calls = 0
        self.stored: list[str] = []

    def write(self, batch):
        assert isinstance(batch, SinkBatch)
        self.calls += 1
        if self.calls in self.down:
            raise ConnectionResetError("connection reset by peer")
        ids = [r["citizen_id"] for r in (*batch.doubles, *batch.ledger, *batch.blacklist)]
        refused = [i for i in ids if i in self.bad]
        if refused:
            raise ValueError(f"refused {refused[0]}")
        self.stored += ids
        return len(batch.doubles)


def items(n: int) -> list[Item]:
    kinds = ("doubles", "ledger", "blacklist")
    return [Item(kinds[i % 3], {"citizen_id": f"c{i}"}, ("topic", 0, i)) for i in range(n)]


def run(sink: Sink, batch: list[Item], metrics: SinkMetrics | None = None):
    return write_items(sink, batch, SinkStats(), 1.0, lambda: False, lambda s: None, metrics)


def test_a_clean_batch_is_one_write():
    sink, batch = Refusing(set()), items(500)
    out = run(sink, batch)
    assert out is not None and not out.refused
    assert sink.calls == 1 and len(sink.stored) == 500
    assert out.per_kind == {"doubles": 167, "ledger": 167, "blacklist": 166}
    assert out.advanced == 167


@pytest.mark.parametrize("bad", [{"c0"}, {"c499"}, {"c7", "c250", "c251"}, {"c1", "c100"}])
def test_the_good_records_are_written_and_each_bad_one_set_aside(bad):
    sink, batch, metrics = Refusing(bad), items(500), SinkMetrics()
    out = run(sink, batch, metrics)
    assert out is not None
    assert sorted(i.record["citizen_id"] for i, _ in out.refused) == sorted(bad)
    assert all(r.reason == "write-error" and "ValueError" in r.detail for _, r in out.refused)
    assert sorted(sink.stored) == sorted(f"c{i}" for i in range(500) if f"c{i}" not in bad)
    assert sum(out.per_kind.values()) == 500 - len(bad)
    # Each bad record costs at most two writes per level of the bisection.
    assert sink.calls <= 1 + 2 * len(bad) * math.ceil(math.log2(500))
    refusals = metrics.registry.get_sample_value(
        "moisson_sink_database_errors_total", {"error": "ValueError"}
    )
    assert refusals is not None and refusals >= len(bad)
    assert metrics.registry.get_sample_value("moisson_sink_retries_total") == 0


def test_every_record_refused_writes_nothing_and_sets_all_aside():
    batch = items(16)
    sink = Refusing({i.record["citizen_id"] for i in batch})
    out = run(sink, batch)
    assert out is not None and len(out.refused) == 16 and not sink.stored
    assert sink.calls == 31  # a full binary tree over 16 leaves


def test_a_transient_failure_while_bisecting_is_retried_not_set_aside():
    sink, batch, metrics = Refusing({"c3"}, down={1, 3, 4}), items(8), SinkMetrics()
    out = run(sink, batch, metrics)
    assert out is not None
    assert [i.record["citizen_id"] for i, _ in out.refused] == ["c3"]
    assert sorted(sink.stored) == sorted(f"c{i}" for i in range(8) if i != 3)
    assert metrics.registry.get_sample_value("moisson_sink_retries_total") == 3
    assert (
        metrics.registry.get_sample_value(
            "moisson_sink_database_errors_total", {"error": "ConnectionResetError"}
        )
        == 3
    )


def test_stopping_during_an_outage_writes_nothing_more():
    sink = Refusing(set(), down=range(1, 100))
    out = write_items(sink, items(10), SinkStats(), 1.0, lambda: sink.calls >= 3, lambda s: None)
    assert out is None and sink.calls == 3 and not sink.stored


def test_a_refusal_is_raised_at_once_not_retried():
    sink, stats = Refusing({"c0"}), SinkStats()
    with pytest.raises(Refused) as caught:
        write_with_retry(sink, SinkBatch(doubles=[{"citizen_id": "c0"}]), stats, 1.0, lambda: False)
    assert sink.calls == 1 and isinstance(caught.value.cause, ValueError)
    assert stats.errors == ["refused c0"]
