"""Reading partitions to their end when the broker reports an end behind its log."""

from __future__ import annotations

from collections import namedtuple

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from moisson.ops.read_to_end import read_to_end

Record = namedtuple("Record", "offset value")
TP = TopicPartition("sanctions", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LaggingBroker:
    """One partition whose records land at the given times. ListOffsets reports
    ``reported`` (behind the log, as Tansu 0.6 does); fetches report as high-water mark
    nothing (``None``), the records landed so far (``"landed"``) or the whole log
    (``"log"``, records the broker has but delivers late). A poll that finds nothing
    lets ``timeout_ms`` pass on the clock."""

    def __init__(
        self, clock: Clock, lands_at: list[float], reported: int, high: str | None = None
    ) -> None:
        self.clock, self.lands_at, self.reported, self.high = clock, lands_at, reported, high
        self.pos = 0
        self.fetched = False

    def end_offsets(self, tps: list) -> dict:
        return {tp: self.reported for tp in tps}

    def highwater(self, tp) -> int | None:
        if self.high is None or not self.fetched:
            return None
        if self.high == "log":
            return len(self.lands_at)
        return sum(1 for t in self.lands_at if t <= self.clock.now)

    def position(self, tp) -> int:
        return self.pos

    def poll(self, timeout_ms: int = 0) -> dict:
        self.fetched = True
        landed = [t for t in self.lands_at[self.pos : self.pos + 2] if t <= self.clock.now]
        if not landed:
            self.clock.now += timeout_ms / 1000
            return {}
        records = [Record(self.pos + i, b"x") for i in range(len(landed))]
        self.pos += len(records)
        self.clock.now += 0.01
        return {TP: records}


def read(broker: LaggingBroker, clock: Clock, timeout: float = 60.0, idle_s: float = 1.5):
    offsets: list[int] = []
    read_to_end(broker, [TP], lambda tp, rec: offsets.append(rec.offset), timeout, idle_s, clock)
    return offsets


def test_reads_past_a_reported_end_behind_the_log():
    clock = Clock()
    broker = LaggingBroker(clock, [0.0] * 5, reported=1)  # one batch of 5: "end" 1
    assert read(broker, clock) == [0, 1, 2, 3, 4]


def test_waits_out_the_idle_period_while_records_still_land():
    clock = Clock()
    # Each record lands within the idle period of the one before, the last 3 s in.
    broker = LaggingBroker(clock, [0.0, 0.0, 1.0, 2.0, 3.0], reported=2, high="landed")
    assert read(broker, clock) == [0, 1, 2, 3, 4]
    assert 3.0 + 1.5 <= clock.now < 3.0 + 2.5


def test_stops_once_idle_past_the_end():
    clock = Clock()
    broker = LaggingBroker(clock, [0.0, 0.0, 5.0], reported=1, high="landed")
    assert read(broker, clock) == [0, 1]
    assert 1.5 <= clock.now < 2.5


def test_a_fetch_high_water_mark_past_the_reported_end_is_read_to_after_a_pause():
    clock = Clock()
    broker = LaggingBroker(clock, [0.0, 0.0, 4.0], reported=1, high="log")
    assert read(broker, clock) == [0, 1, 2]


def test_an_empty_topic_is_read_after_one_idle_period():
    clock = Clock()
    assert read(LaggingBroker(clock, [], reported=0), clock, idle_s=0.6) == []
    assert 0.6 <= clock.now < 1.2


def test_times_out_short_of_the_reported_end():
    clock = Clock()
    broker = LaggingBroker(clock, [0.0, 100.0], reported=2)
    with pytest.raises(KafkaTimeoutError, match=r"sanctions\[0\] at 1 of 2"):
        read(broker, clock, timeout=10)


def test_times_out_short_of_the_first_fetch_high_water_mark():
    clock = Clock()
    broker = LaggingBroker(clock, [0.0, 0.0, 100.0], reported=1, high="log")
    with pytest.raises(KafkaTimeoutError, match=r"at 2 of 3"):
        read(broker, clock, timeout=10)


def test_a_topic_still_being_written_is_read_until_the_timeout():
    clock = Clock()
    broker = LaggingBroker(clock, [i * 0.5 for i in range(1000)], reported=1, high="landed")
    offsets = read(broker, clock, timeout=10)
    assert offsets == list(range(len(offsets)))
    assert 15 <= len(offsets) <= 25 and 10 <= clock.now < 11
