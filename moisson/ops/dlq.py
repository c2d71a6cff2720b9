"""`moisson dlq`: what the processor (or, with ``--sink``, the sink) refused, per reason,
read from a dead-letter topic."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from moisson.settings import Settings
from schemas import dead_letters as dl


@dataclass
class DeadLetters:
    total: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    latest: list[dict[str, Any]] = field(default_factory=list)


def read_dead_letters(
    settings: Settings, keep: int = 10, idle_ms: int = 2000, topic: str | None = None
) -> DeadLetters:
    """Read a whole dead-letter topic, the processor's by default (no consumer group:
    nothing is committed); both share the headers of :mod:`schemas.dead_letters`."""
    topic = topic or settings.topics.dlq
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **settings.kafka.client_kwargs(),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=idle_ms,
    )
    out = DeadLetters()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
        consumer.seek_to_beginning()
        for r in consumer:
            headers = dl.read(r.headers or [])
            reason = headers[dl.REASON]
            out.total += 1
            out.by_reason[reason] += 1
            out.latest.append(
                {
                    "reason": reason,
                    "detail": headers.get(dl.DETAIL, ""),
                    "source": f"{headers.get(dl.TOPIC)}[{headers.get(dl.PARTITION)}]"
                    f"@{headers.get(dl.OFFSET)}",
                    "key": r.key,
                    "bytes": len(r.value or b""),
                    "value": r.value,
                }
            )
            out.latest = out.latest[-keep:]
    finally:
        consumer.close()
    return out
