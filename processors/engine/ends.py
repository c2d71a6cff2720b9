"""Where a changelog ends, as its fetches say, not only as ListOffsets says.

faust's recovery reads each changelog partition up to the end ListOffsets (LATEST)
reports. Tansu 0.6, the embedded broker, reports the last record batch's base offset
plus one (docs/tansu-high-watermark.md): a recovery would stop before the last batch's
other records, and a restarted worker would resume with a position newer than its
doubles (events lost), or, with its state on disk, find its own offset past the "end"
and stop. Fetching the last reported record gives the fetch's high-water mark, the true
end on every broker; on Apache Kafka it equals the reported one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypeVar

from kafka import KafkaConsumer, TopicPartition

P = TypeVar("P")


def fetched_ends(
    client: Mapping[str, Any], reported: Mapping[P, int | None], timeout: float = 10.0
) -> dict[P, int | None]:
    """``reported`` ends (per faust ``TP``), raised to the high-water mark a fetch from
    each partition's last reported record returns; a partition no fetch answered for
    within ``timeout`` keeps its reported end."""
    out = dict(reported)
    asked = {TopicPartition(tp.topic, tp.partition): tp for tp, end in reported.items() if end}  # type: ignore[attr-defined]
    if not asked:
        return out
    consumer = KafkaConsumer(**client, enable_auto_commit=False)
    try:
        consumer.assign(list(asked))
        for ktp, tp in asked.items():
            consumer.seek(ktp, int(reported[tp] or 0) - 1)
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(k) is None for k in asked) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        for ktp, tp in asked.items():
            high = consumer.highwater(ktp)
            if high is not None:
                out[tp] = max(int(reported[tp] or 0), high)
    finally:
        consumer.close()
    return out
