"""The Kafka runner that feeds any sink: consume, write, set aside, commit after.

Offsets are committed only after ``Sink.write`` returns, i.e. after the database
transaction committed, and after the batch's dead letters are acknowledged: a crash
in between replays the batch, and the sink's guards make it a no-op. A transient
failure (the database is away or busy) is retried with exponential backoff, never
skipped. A record the sink refuses (:meth:`Sink.refuse`, checked before writing) or
that the database refused (found by bisecting the batch, :mod:`sinks.writes`) goes to
the sink's dead-letter topic with its reason, and the sink goes on past it: one
record never stops the sink.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from schemas.codec import BLACKLIST, DOUBLE, LEDGER, CodecError, decode
from sinks.base import Record, Refusal, Sink, first_line
from sinks.dead_letters import DeadLetter, DeadLetterTopic
from sinks.metrics import SinkCounts, Uncounted
from sinks.writes import Item, SinkStats, pause, write_items, write_with_retry

__all__ = ["RETRY_MAX_S", "SinkStats", "make_consumer", "pause", "run_sink", "write_with_retry"]

log = logging.getLogger(__name__)

#: The default longest pause between retries (``settings.sink.retry_max_s``'s default).
RETRY_MAX_S = 30.0
#: Which kind of :class:`~sinks.base.SinkBatch` record each Avro record is.
KIND_OF = {DOUBLE.name: "doubles", LEDGER.name: "ledger", BLACKLIST.name: "blacklist"}
#: The ``record`` label of ``moisson_sink_records_written`` per kind.
LABEL = {"doubles": "double", "ledger": "ledger", "blacklist": "blacklist"}
NOT_A_SINK_RECORD = "not-a-sink-record"


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
    metrics: SinkCounts | None = None,
    dead_letters: DeadLetterTopic | None = None,
) -> SinkStats:
    """Poll the processor's outputs, write them in batches, commit offsets after each
    database commit.

    A transient failure is retried with backoff capped at ``retry_max_s`` (the caller
    passes ``settings.sink.retry_max_s``); a refused record is sent to
    ``dead_letters`` (without one, it is only logged) and passed. Figures go to
    ``metrics``.
    """
    stats = SinkStats()
    m: SinkCounts = metrics if metrics is not None else Uncounted()
    lag_at = 0.0
    kafka_delay = min(0.5, retry_max_s)
    while not should_stop():
        try:
            polled = consumer.poll(timeout_ms=poll_timeout_ms, max_records=batch_size)
        except KafkaError as exc:  # the broker is restarting: wait for it, lose nothing
            log.warning(
                "cannot poll Kafka (%s: %s); retrying in %.1fs",
                type(exc).__name__,
                first_line(exc),
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
        items, letters = read_batch(polled, sink, stats, m)
        written = write_items(sink, items, stats, retry_max_s, should_stop, sleep, m)
        if written is None:
            return stats
        for item, refusal in written.refused:
            letters.append(DeadLetter(refusal, item.message))
        if not set_aside(letters, dead_letters, retry_max_s, should_stop, sleep):
            return stats
        for reason in (letter.refusal.reason for letter in letters):
            m.dead_letters.labels(reason).inc()
        stats.dead_letters += len(letters)
        for kind, n in written.per_kind.items():
            m.written.labels(LABEL[kind]).inc(n)
        stats.written += written.advanced
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


def read_batch(
    polled: dict[Any, list[Any]], sink: Sink, stats: SinkStats, m: SinkCounts
) -> tuple[list[Item], list[DeadLetter]]:
    """Decode and check every polled record: the items to write, and the dead letters
    of those that are none of the sink's records or that the sink refuses."""
    items: list[Item] = []
    letters: list[DeadLetter] = []
    for tp, records in polled.items():
        m.consumed.labels(tp.topic).inc(len(records))
        for rec in records:
            stats.consumed += 1
            got = decoded(rec.value)
            if isinstance(got, Refusal):
                stats.undecodable += 1
                m.undecodable.inc()
                letters.append(DeadLetter(got, rec))
            elif (refusal := sink.refuse(*got)) is not None:
                letters.append(DeadLetter(refusal, rec))
            else:
                items.append(Item(*got, rec))
    return items, letters


def decoded(value: bytes | None) -> tuple[str, Record] | Refusal:
    """A record's kind and fields, or why it is none of the sink's records."""
    try:
        schema, record = decode(value)  # type: ignore[arg-type]  # None: a tombstone
    except CodecError as exc:
        return Refusal(exc.reason.value, exc.detail)
    kind = KIND_OF.get(schema.name)
    if kind is None:
        return Refusal(NOT_A_SINK_RECORD, f"a {schema.name} is none of the sink's records")
    return kind, record


def set_aside(
    letters: Sequence[DeadLetter],
    topic: DeadLetterTopic | None,
    retry_max_s: float,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None],
) -> bool:
    """Send a batch's dead letters until every one is acknowledged; False if asked to
    stop first (the batch is then not committed)."""
    for letter in letters:
        m = letter.message
        log.warning(
            "set aside %s[%d]@%d: %s (%s)",
            m.topic,
            m.partition,
            m.offset,
            letter.refusal.reason,
            letter.refusal.detail,
        )
    if not letters or topic is None:
        return True
    delay = min(0.5, retry_max_s)
    while True:
        try:
            topic.send(letters)
            return True
        except KafkaError as exc:
            log.warning(
                "cannot send %d dead letter(s) to %s (%s: %s); retrying in %.1fs",
                len(letters),
                topic.topic,
                type(exc).__name__,
                first_line(exc),
                delay,
            )
            if not pause(delay, should_stop, sleep):
                return False
            delay = min(delay * 2, retry_max_s)


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
