"""What the sensors' Kafka I/O is given by the entry points that run it: the settings it
reads and the counters it counts into, as protocols (moisson's ``Settings`` and
``SensorMetrics`` are ones). This package imports nothing of moisson (a contract)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from schemas.kinds import SENSOR_KINDS
from schemas.topics import Topics


class KafkaConfig(Protocol):
    """What the sensors read of the Kafka settings."""

    @property
    def partitions(self) -> int: ...

    @property
    def replication_factor(self) -> int: ...

    def client_kwargs(self) -> dict[str, Any]: ...


class TopicsConfig(Protocol):
    """What the sensors read of the topic settings."""

    @property
    def names(self) -> Topics: ...

    @property
    def sanctions(self) -> str: ...

    def sensor(self, kind: str) -> str: ...


class ProcessorConfig(Protocol):
    """What the sensors read of the processor's settings (its app id names a changelog)."""

    @property
    def app_id(self) -> str: ...


class SensorsConfig(Protocol):
    """The settings the sensors' Kafka I/O reads, passed in by the entry points (moisson's
    ``Settings`` is one): this package imports nothing of moisson."""

    @property
    def kafka(self) -> KafkaConfig: ...

    @property
    def topics(self) -> TopicsConfig: ...

    @property
    def processor(self) -> ProcessorConfig: ...


class Count(Protocol):
    """A counter (a Prometheus counter's child, bound to its labels)."""

    def inc(self, amount: float = 1) -> None: ...


class SensorCounts(Protocol):
    """What the publisher counts into, per sensor kind (``moisson.metrics.SensorMetrics``
    is one, passed in by the entry point that serves it)."""

    @property
    def sent(self) -> Mapping[str, Count]: ...

    @property
    def errors(self) -> Mapping[str, Count]: ...


class _Nothing:
    def inc(self, amount: float = 1) -> None:
        pass


class Uncounted:
    """The publisher's counts when nobody serves them: counted nowhere."""

    def __init__(self) -> None:
        self.sent: dict[str, Count] = dict.fromkeys(SENSOR_KINDS, _Nothing())
        self.errors: dict[str, Count] = dict.fromkeys(SENSOR_KINDS, _Nothing())
