"""The sink contract, and the Kafka loop that feeds any sink.

Offsets are committed only after ``write`` returns, i.e. after the database
transaction committed: a crash in between replays the batch, and the sink's
version guard makes the replay a no-op.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer

from schemas.codec import DOUBLE, CodecError, decode

log = logging.getLogger(__name__)

Double = dict[str, Any]


class Sink(ABC):
    """Somewhere doubles are persisted."""

    @abstractmethod
    def write(self, batch: Sequence[Double]) -> int:
        """Persist a batch atomically; return how many rows changed."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""


def latest_per_citizen(batch: Sequence[Double]) -> list[Double]:
    """Keep only the highest version of each citizen (one row per key per statement)."""
    best: dict[str, Double] = {}
    for d in batch:
        cur = best.get(d["citizen_id"])
        if cur is None or d["version"] > cur["version"]:
            best[d["citizen_id"]] = d
    return list(best.values())


@dataclass
class SinkStats:
    consumed: int = 0
    written: int = 0
    undecodable: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


def make_consumer(topic: str, group_id: str, **client: Any) -> KafkaConsumer:
    """A consumer that commits only when told; ``client`` holds the connection arguments."""
    return KafkaConsumer(
        topic,
        **client,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )


def run_sink(
    consumer: KafkaConsumer,
    sink: Sink,
    batch_size: int,
    poll_timeout_ms: int = 500,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[SinkStats], None] | None = None,
) -> SinkStats:
    """Poll doubles, write them in batches, commit offsets after each database commit."""
    stats = SinkStats()
    while not should_stop():
        polled = consumer.poll(timeout_ms=poll_timeout_ms, max_records=batch_size)
        if not polled:
            continue
        batch: list[Double] = []
        for records in polled.values():
            for rec in records:
                stats.consumed += 1
                try:
                    batch.append(decode(rec.value, DOUBLE)[1])
                except CodecError as exc:
                    stats.undecodable += 1
                    log.warning(
                        "skipping undecodable double at %s[%d]@%d: %s",
                        rec.topic,
                        rec.partition,
                        rec.offset,
                        exc,
                    )
        while True:
            try:
                stats.written += sink.write(batch)
                break
            except Exception as exc:  # the database may be down: retry, never skip
                stats.errors.append(str(exc))
                log.error("sink write failed, retrying in 2s: %s", exc)
                time.sleep(2)
                if should_stop():
                    return stats
        consumer.commit()
        stats.batches += 1
        if on_batch is not None:
            on_batch(stats)
    return stats
