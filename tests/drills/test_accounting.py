"""The drills' accounting without services: the sink's backoff and the lost/duplicated tally."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from moisson.metrics import SinkMetrics
from moisson.ops.verify import tally
from sinks.base import Double, Sink
from sinks.runner import SinkStats, write_with_retry

pytestmark = pytest.mark.drills


class DownFor(Sink):
    """A database that refuses the first ``n`` writes."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0
        self.resets = 0

    def write(self, batch: Sequence[Double]) -> int:
        self.calls += 1
        if self.calls <= self.n:
            raise ConnectionError("connection refused\nsecond line")
        return len(batch)

    def reset(self) -> None:
        self.resets += 1


def test_backoff_doubles_up_to_its_cap_and_says_so(caplog: pytest.LogCaptureFixture):
    sink, slept, metrics = DownFor(6), [], SinkMetrics()
    with caplog.at_level(logging.WARNING, logger="sinks.runner"):
        written = write_with_retry(
            sink, [{"citizen_id": "c1"}], SinkStats(), 3.0, lambda: False, slept.append, metrics
        )
    assert written == 1 and sink.calls == 7 and sink.resets == 6
    r = metrics.registry
    assert (
        r.get_sample_value("moisson_sink_database_errors_total", {"error": "ConnectionError"}) == 6
    )
    assert r.get_sample_value("moisson_sink_retries_total") == 6
    assert r.get_sample_value("moisson_sink_batch_seconds_count") == 1  # the one that succeeded
    delays = [r.getMessage().rsplit("retrying in ", 1)[1] for r in caplog.records[:-1]]
    assert delays == ["0.5s", "1.0s", "2.0s", "3.0s", "3.0s", "3.0s"]
    assert "ConnectionError: connection refused);" in caplog.records[0].getMessage()
    assert sum(slept) == pytest.approx(12.5)
    assert "succeeded after 6 failed attempt(s)" in caplog.records[-1].getMessage()


def test_backoff_gives_up_only_when_asked_to_stop():
    sink = DownFor(100)
    stats = SinkStats()
    assert write_with_retry(sink, [{}], stats, 1.0, lambda: sink.calls >= 3, lambda s: None) is None
    assert sink.calls == 3 and len(stats.errors) == 3


def counts(metro: int, payment: int = 0, book: int = 0, camera: int = 0) -> dict:
    return {
        "metro_count": metro,
        "payment_count": payment,
        "book_count": book,
        "camera_count": camera,
    }


def test_tally_tells_lost_from_twice_applied_kind_by_kind():
    expected = {"a": counts(3, 2), "b": counts(1), "c": counts(0, 0, 4)}
    stored = {"a": counts(2, 3), "b": counts(1), "x": counts(0, 0, 0, 1)}
    t = tally(expected, stored)
    # a: one metro lost, one payment twice; c: four books lost; x: one camera from nowhere.
    assert (t.events, t.stored, t.lost, t.duplicated) == (10, 7, 5, 2)
    assert tally(expected, expected).lost == tally(expected, expected).duplicated == 0


class FlakyConsumer:
    """A consumer whose broker is away for the first ``n`` polls."""

    def __init__(self, n: int, doubles: list[bytes]) -> None:
        self.n, self.polls, self.commits, self.doubles = n, 0, 0, doubles

    def poll(self, **_):
        from kafka.errors import KafkaConnectionError

        self.polls += 1
        if self.polls <= self.n:
            raise KafkaConnectionError("111 ECONNREFUSED")
        if self.doubles:
            from kafka import TopicPartition

            batch, self.doubles = self.doubles, []
            return {
                TopicPartition("d", 0): [
                    type("R", (), {"value": v, "topic": "d", "partition": 0, "offset": 0})
                    for v in batch
                ]
            }
        return {}

    def commit(self):
        self.commits += 1

    def assignment(self):
        return set()  # never fetched: no lag to report


def test_the_sink_waits_out_a_broker_restart(caplog: pytest.LogCaptureFixture):
    from processors.core.fold import fold_all
    from schemas.codec import DOUBLE, encode
    from sinks.runner import run_sink
    from tests.factories import ev

    double = fold_all([ev("metro")])["c0000001"]
    consumer, sink, slept = FlakyConsumer(4, [encode(DOUBLE, double)]), DownFor(0), []
    metrics = SinkMetrics()
    with caplog.at_level(logging.WARNING, logger="sinks.runner"):
        stats = run_sink(
            consumer,
            sink,
            10,
            should_stop=lambda: consumer.commits >= 1,
            retry_max_s=1.0,
            sleep=slept.append,
            metrics=metrics,
        )
    assert stats.written == 1 and consumer.commits == 1
    r = metrics.registry
    assert r.get_sample_value("moisson_sink_records_consumed_total", {"topic": "d"}) == 1
    assert r.get_sample_value("moisson_sink_records_written_total", {"record": "double"}) == 1
    assert r.get_sample_value("moisson_sink_records_written_total", {"record": "ledger"}) == 0
    assert r.get_sample_value("moisson_sink_batch_seconds_count") == 1
    assert [r.getMessage().rsplit("retrying in ", 1)[1] for r in caplog.records] == [
        "0.5s",
        "1.0s",
        "1.0s",
        "1.0s",
    ]
    assert "KafkaConnectionError" in caplog.records[0].getMessage()
