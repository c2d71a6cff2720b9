"""Hand-made sensor events for rule tests: valid records with sensible defaults."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from moisson.settings import Settings
from processors.core.fold import Event
from schemas.codec import SANCTION, encode

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
DEFAULTS: dict[str, dict[str, Any]] = {
    "metro": {
        "station": "Guomao",
        "line": "1",
        "direction": "ENTRY",
        "ticket": "CARD",
        "fare_cents": 400,
        "outcome": "ALLOWED",
    },
    "payment": {
        "merchant": "Wumart",
        "category": "GROCERIES",
        "amount_cents": 1200,
        "currency": "CNY",
        "outcome": "APPROVED",
    },
    "book": {"isbn": "9787536692930", "title": "三体", "category": "NEUTRAL", "price_cents": 3000},
    "camera": {
        "location": "Houhai",
        "behaviour": "PASSING",
        "confidence": 0.9,
        "companions": [],
        "companions_blacklisted": [],
    },
}
_n = 0


def ev(
    kind: str,
    *,
    hours: float = 0,
    citizen: str = "c0000001",
    event_id: str | None = None,
    **fields: Any,
) -> Event:
    """An event ``hours`` after T0; unique id unless given."""
    global _n
    _n += 1
    record = {
        "event_id": event_id or str(uuid.UUID(int=_n, version=4)),
        "citizen_id": citizen,
        "sensor_id": f"{kind}-test",
        "occurred_at": T0 + timedelta(hours=hours),
        **DEFAULTS[kind],
        **fields,
    }
    return Event(kind, record)


def sanction(
    citizen: str = "c0000001", *, active: bool = True, version: int = 1, **fields: Any
) -> dict[str, Any]:
    """A sanction as the processor sends it: ``active`` blacklists, else lifts."""
    return {
        "sanction_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{citizen}/{version}/{active}")),
        "citizen_id": citizen,
        "kind": "BLACKLIST",
        "active": active,
        "score": 300 if active else 420,
        "threshold": 350 if active else 400,
        "reason": "test",
        "issued_at": T0 + timedelta(hours=version),
        "double_version": version,
        **fields,
    }


def pg_reader(url: str, schema: str = "public") -> Any:
    """A ``PostgresReader`` on ``schema``, its tables created first (as the sink would)."""
    from sinks.postgres.reader import PostgresReader
    from sinks.postgres.tables import create_tables, engine_for

    engine = engine_for(url, schema)
    create_tables(engine, schema)
    engine.dispose()
    return PostgresReader(url, schema)


def zigzag_varint(n: int) -> bytes:
    """Avro's encoding of the long ``n``."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


@dataclass
class Msg:
    """A consumed Kafka record, as the sink's runner reads one."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def send_batches(settings: Settings, partition: int, batches: list[list[dict]]) -> None:
    """Each batch in one produce request (one record batch) to ``partition``."""
    producer = KafkaProducer(**settings.kafka.client_kwargs(), linger_ms=50)
    for batch in batches:
        for x in batch:
            producer.send(
                settings.topics.sanctions,
                key=x["citizen_id"].encode(),
                value=encode(SANCTION, x),
                partition=partition,
            )
        producer.flush()
    producer.close()


def reported_end(settings: Settings, partition: int) -> int:
    """The end ListOffsets (LATEST) reports for a ``sanctions`` partition."""
    tp = TopicPartition(settings.topics.sanctions, partition)
    consumer = KafkaConsumer(**settings.kafka.client_kwargs())
    try:
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()
