"""The Kafka runner that feeds any sink: consume, write with retry, commit after.

Offsets are committed only after ``Sink.write`` returns, i.e. after the database
transaction committed: a crash in between replays the batch, and the sink's guards
make it a no-op. A failed write is retried with exponential backoff, never skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from moisson.metrics import SinkMetrics
from schemas.codec import BLACKLIST, DOUBLE, LEDGER, CodecError, decode
from sinks.base import Double, Harvest, Sink

log = logging.getLogger(__name__)

#: The default longest pause between retries (``settings.sink.retry_max_s``'s default).
RETRY_MAX_S = 30.0


@dataclass
class SinkStats:
    consumed: int = 0
    written: int = 0
    undecodable: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


def make_consumer(topics: str | Sequence[str], group_id: str, **client: Any) -> KafkaConsumer:
    """A consumer that commits only when told; ``client`` holds the connection arguments.

    The session timeout is 10 s (Kafka's default is 45 s): a sink that was killed
    holds its partitions until it expires, so a restarted sink waits that long.
    """
    return KafkaConsumer(
        *([topics] if isinstance(topics, str) else topics),
        **client,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
    )


def run_sink(
    consumer: KafkaConsumer,
    sink: Sink,
    batch_size: int,
    poll_timeout_ms: int = 500,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[SinkStats], None] | None = None,
    retry_max_s: float = RETRY_MAX_S,
    sleep: Callable[[float], None] = time.sleep,
    metrics: SinkMetrics | None = None,
) -> SinkStats:
    """Poll doubles, write them in batches, commit offsets after each database commit.

    A failed write is retried with exponential backoff capped at ``retry_max_s``
    (the caller passes ``settings.sink.retry_max_s``), never skipped, so an outage of the
    database delays the batch and loses nothing. Its figures go to ``metrics``.
    """
    stats = SinkStats()
    m = metrics if metrics is not None else SinkMetrics()
    lag_at = 0.0
    kafka_delay = min(0.5, retry_max_s)
    while not should_stop():
        try:
            polled = consumer.poll(timeout_ms=poll_timeout_ms, max_records=batch_size)
        except KafkaError as exc:  # the broker is restarting: wait for it, lose nothing
            log.warning(
                "cannot poll Kafka (%s: %s); retrying in %.1fs",
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                kafka_delay,
            )
            if not pause(kafka_delay, should_stop, sleep):
                return stats
            kafka_delay = min(kafka_delay * 2, retry_max_s)
            continue
        kafka_delay = min(0.5, retry_max_s)
        if time.monotonic() - lag_at >= 1.0:
            lag_at = time.monotonic()
            m.lag.set_all(lag_of(consumer))
        if not polled:
            continue
        batch = Harvest()
        into = {
            DOUBLE.name: batch.doubles,
            LEDGER.name: batch.ledger,
            BLACKLIST.name: batch.blacklist,
        }
        for tp, records in polled.items():
            m.consumed.labels(tp.topic).inc(len(records))
            for rec in records:
                stats.consumed += 1
                try:
                    schema, record = decode(rec.value)
                    found = into.get(schema.name)
                    if found is None:
                        raise ValueError(f"a {schema.name} is none of the sink's records")
                    found.append(record)
                except (CodecError, ValueError) as exc:
                    stats.undecodable += 1
                    m.undecodable.inc()
                    log.warning(
                        "skipping an undecodable record at %s[%d]@%d: %s",
                        rec.topic,
                        rec.partition,
                        rec.offset,
                        exc,
                    )
        written = write_with_retry(sink, batch, stats, retry_max_s, should_stop, sleep, m)
        if written is None:
            return stats
        for name, rows in (
            ("double", batch.doubles),
            ("ledger", batch.ledger),
            ("blacklist", batch.blacklist),
        ):
            m.written.labels(name).inc(len(rows))
        stats.written += written
        try:
            consumer.commit()
        except KafkaError as exc:
            # The group moved on (a long outage, a rebalance): the batch comes again
            # and the version guard makes it a no-op.
            log.warning("offsets not committed (%s); the batch will be delivered again", exc)
        stats.batches += 1
        if on_batch is not None:
            on_batch(stats)
    return stats


def lag_of(consumer: KafkaConsumer) -> dict[tuple[str, int], int]:
    """Records between the consumer's position and each assigned partition's high-water
    mark (partitions not fetched yet are left out)."""
    lag = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            at = consumer.position(tp, timeout_ms=0)
        except KafkaError:
            continue
        if at is not None:
            lag[(tp.topic, tp.partition)] = max(0, high - at)
    return lag


def pause(seconds: float, should_stop: Callable[[], bool], sleep: Callable[[float], None]) -> bool:
    """Sleep ``seconds`` in small steps; False as soon as asked to stop."""
    waited = 0.0
    while waited < seconds:
        if should_stop():
            return False
        step = min(0.25, seconds - waited)
        sleep(step)
        waited += step
    return True


def write_with_retry(
    sink: Sink,
    batch: Harvest | Sequence[Double],
    stats: SinkStats,
    retry_max_s: float,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
    metrics: SinkMetrics | None = None,
) -> int | None:
    """Write ``batch`` until it succeeds; None if asked to stop first."""
    m = metrics if metrics is not None else SinkMetrics()
    delay = min(0.5, retry_max_s)
    failed_at: float | None = None
    attempts = 0
    while True:
        if attempts:
            m.retries.inc()
        began = time.perf_counter()
        try:
            written = sink.write(batch)
        except Exception as exc:  # the database may be down: retry, never skip
            attempts += 1
            m.errors.labels(type(exc).__name__).inc()
            if failed_at is None:
                failed_at = time.monotonic()
            stats.errors.append(str(exc))
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.error(
                "sink write failed (attempt %d, %s: %s); retrying in %.1fs",
                attempts,
                type(exc).__name__,
                first_line,
                delay,
            )
            sink.reset()
            if not pause(delay, should_stop, sleep):
                return None
            delay = min(delay * 2, retry_max_s)
            continue
        m.batch_seconds.observe(time.perf_counter() - began)
        if failed_at is not None:
            log.warning(
                "sink write succeeded after %d failed attempt(s) over %.1fs; resuming",
                attempts,
                time.monotonic() - failed_at,
            )
        return written
