"""Read partitions to their end without trusting the end a broker reports.

Apache Kafka's ListOffsets (LATEST) is the high-water mark: one past the last record a
consumer can read. Tansu 0.6 reports the last batch's base offset plus one, so the
records after a batch's first are past the "end" yet readable
(docs/tansu-high-watermark.md). The reported end is therefore where reading may stop,
not where it must: reading goes on to the high-water mark the fetches report, and then
until no record has arrived for an idle period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

#: Seconds without a new record, past the reported end, before a topic counts as read.
IDLE_S = 1.5


class Consumer(Protocol):
    """What :func:`read_to_end` needs of a ``kafka.KafkaConsumer`` (already assigned)."""

    def end_offsets(self, partitions: list[Any]) -> dict[Any, int]: ...
    def highwater(self, partition: Any) -> int | None: ...
    def position(self, partition: Any) -> int: ...
    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]: ...


def read_to_end(
    consumer: Consumer,
    partitions: Iterable[Any],
    on_record: Callable[[Any, Any], None],
    timeout: float,
    idle_s: float = IDLE_S,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Hand every record of ``partitions``, from the consumer's positions, to
    ``on_record(partition, record)`` until each partition is at or past both the end
    ListOffsets reports when reading begins and the highest high-water mark its fetches
    report, and no record has arrived for ``idle_s`` seconds.

    Bounded by ``timeout``: raises ``KafkaTimeoutError`` if a partition has not reached,
    in time, the end known when its reading began (ListOffsets, or its first fetch's
    high-water mark if higher); past that (a topic still being written to), it returns
    when the time is up.
    """
    from kafka.errors import KafkaTimeoutError

    tps = list(partitions)
    ends = dict(consumer.end_offsets(tps))
    due = dict(ends)  # what must be read: the end known when reading began
    fetched: set[Any] = set()
    started = clock()
    deadline = started + timeout
    last_record = started
    poll_ms = int(1000 * min(0.5, max(idle_s / 3, 0.05)))
    while True:
        for tp in tps:
            high = consumer.highwater(tp)
            if high is None:
                continue
            ends[tp] = max(ends[tp], high)
            if tp not in fetched:
                fetched.add(tp)
                due[tp] = max(due[tp], high)
        at = {tp: consumer.position(tp) for tp in tps}
        now = clock()
        if all(at[tp] >= ends[tp] for tp in tps) and now - last_record >= idle_s:
            return
        if now >= deadline:
            behind = [tp for tp in tps if at[tp] < due[tp]]
            if not behind:
                return
            raise KafkaTimeoutError(
                f"end offsets not reached in {timeout:g}s: "
                + ", ".join(f"{tp.topic}[{tp.partition}] at {at[tp]} of {due[tp]}" for tp in behind)
            )
        for tp, records in consumer.poll(timeout_ms=poll_ms).items():
            for rec in records:
                on_record(tp, rec)
                last_record = clock()
