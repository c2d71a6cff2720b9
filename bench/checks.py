"""The bench refuses a run that did not apply every event.

A consumer group's commits say how far a processor read, not what it applied. The
applied count is in its output: each citizen's latest double carries ``version``, the
number of distinct events folded into it, so the versions of the latest double per
key sum to the events applied. P2 pre-loads only valid, distinct events, so that sum
must equal the number pre-loaded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from schemas.codec import DOUBLE, decode

if TYPE_CHECKING:
    from moisson.settings import Settings


class NotApplied(RuntimeError):
    """A processor's output holds fewer (or more) applied events than were pre-loaded."""


def latest_per_key(
    records: Iterable[tuple[bytes | None, bytes | None]], latest: dict[bytes, bytes] | None = None
) -> dict[bytes, bytes]:
    """The last value of each key among (key, value) records given in offset order (a
    key lives in one partition, so only each partition's order matters), added to
    ``latest`` when given; a tombstone (value None) removes its key, as compaction
    would. Keyless records are skipped."""
    latest = {} if latest is None else latest
    for key, value in records:
        if key is None:
            continue
        if value is None:
            latest.pop(key, None)
        else:
            latest[key] = value
    return latest


def applied_events(doubles: Iterable[bytes]) -> int:
    """The sum of ``version`` over encoded doubles: the distinct events applied."""
    total = 0
    for value in doubles:
        schema, record = decode(value)
        if schema.name != DOUBLE.name:
            raise NotApplied(f"a {schema.name} where a DigitalDouble was expected")
        total += int(record["version"])
    return total


def check_applied(framework: str, topic: str, expected: int, latest: dict[bytes, bytes]) -> int:
    """Raise unless the latest doubles in ``topic`` applied exactly ``expected`` events."""
    found = applied_events(latest.values())
    if found != expected:
        raise NotApplied(
            f"{framework}: {expected:,} events pre-loaded but the latest doubles in {topic}"
            f" ({len(latest):,} citizens) applied {found:,}"
            f" ({'short by ' + format(expected - found, ',') if found < expected else 'too many'})"
        )
    return found


def read_latest(s: Settings, topic: str, timeout: float = 600.0) -> dict[bytes, bytes]:
    """The latest value per key of ``topic``, read from the start to its end offsets
    (taken once: the processor writing it has stopped)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **s.kafka.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            raise NotApplied(f"{topic} does not exist: nothing was written to it")
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        consumer.seek_to_beginning()
        latest: dict[bytes, bytes] = {}
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end offsets in {timeout:.0f} s")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                latest_per_key(((r.key, r.value) for r in batch if r.offset < ends[tp]), latest)
        return latest
    finally:
        consumer.close()


def require_applied(s: Settings, framework: str, topic: str, expected: int) -> int:
    """Read ``topic``'s latest doubles and raise unless they applied ``expected`` events."""
    return check_applied(framework, topic, expected, read_latest(s, topic))
