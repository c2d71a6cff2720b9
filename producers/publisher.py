"""Kafka I/O for the sensors: topic creation and keyed, idempotent sends (kafka-python)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

from moisson.settings import Settings
from producers.city import SensorEvent

log = logging.getLogger(__name__)

COMPACTED = {"cleanup.policy": "compact"}


def ensure_topics(settings: Settings) -> list[str]:
    """Create the sensor, doubles and sanctions topics when missing; return those created.

    faust creates only its internal topics, so the source topics are ours to create,
    all with the same partition count as the processor's table.
    """
    topics = settings.topics
    wanted: dict[str, dict[str, str]] = {}
    for name in topics.sensors:
        wanted[name] = {}
    wanted[topics.doubles] = COMPACTED
    wanted[topics.sanctions] = COMPACTED
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        missing = {
            name: {
                "num_partitions": settings.kafka.partitions,
                "replication_factor": settings.kafka.replication_factor,
                "configs": configs,
            }
            for name, configs in wanted.items()
            if name not in existing
        }
        if missing:
            admin.create_topics(missing, raise_errors=False, wait_for_metadata=True)
        return sorted(missing)
    finally:
        admin.close()


def make_producer(settings: Settings) -> KafkaProducer:
    """An idempotent producer (kafka-python 3 defaults: acks=all, idempotence on)."""
    return KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        linger_ms=10,
        batch_size=131072,
    )


class Publisher:
    """Sends sensor events to their topics, keyed by ``citizen_id``."""

    def __init__(self, settings: Settings, producer: KafkaProducer | None = None) -> None:
        self.settings = settings
        self.producer = producer or make_producer(settings)
        self.sent = 0
        self.errors: list[KafkaError] = []

    def _on_error(self, exc: BaseException) -> None:
        log.error("send failed: %s", exc)
        if isinstance(exc, KafkaError):
            self.errors.append(exc)

    def send(self, event: SensorEvent) -> None:
        self.producer.send(
            self.settings.topics.sensor(event.kind),
            key=event.citizen_id.encode(),
            value=event.encode(),
        ).add_errback(self._on_error)
        self.sent += 1

    def publish(
        self, events: Iterable[SensorEvent], progress: Callable[[int], None] | None = None
    ) -> int:
        """Send every event, flush, and return how many were sent. Raises if any send failed."""
        n = 0
        for event in events:
            self.send(event)
            n += 1
            if progress is not None and n % 1000 == 0:
                progress(1000)
        self.producer.flush()
        if progress is not None:
            progress(n % 1000)
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} sends failed; first: {self.errors[0]}")
        return n

    def close(self) -> None:
        self.producer.close()
