"""The dead-letter headers: why a message was refused, and where it came from (the
processor's ``sensors.dlq`` and the sink's ``sink.dlq`` share them)."""

from __future__ import annotations

from collections.abc import Iterable

REASON = "moisson.reason"
DETAIL = "moisson.detail"
TOPIC = "moisson.topic"
PARTITION = "moisson.partition"
OFFSET = "moisson.offset"
DETAIL_LIMIT = 500


def headers(
    reason: str, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """The headers of a dead letter (its value is the refused message's own bytes)."""
    return [
        (REASON, reason.encode()),
        (DETAIL, detail[:DETAIL_LIMIT].encode("utf-8", "replace")),
        (TOPIC, topic.encode()),
        (PARTITION, str(partition).encode()),
        (OFFSET, str(offset).encode()),
    ]


def read(raw: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    """A dead letter's headers as text (a missing reason reads ``unknown``)."""
    out = {k: (v or b"").decode("utf-8", "replace") for k, v in raw}
    out.setdefault(REASON, "unknown")
    return out
