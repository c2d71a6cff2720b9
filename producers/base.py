"""The shared base of every sensor: pure generation, ``rng`` in, event out."""

from __future__ import annotations

import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from producers.population import Citizen
from schemas.codec import Schema

Record = dict[str, Any]


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (so reproducible, unlike ``uuid.uuid4``)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def millis_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Sensor(ABC):
    """One kind of sensor network. Subclasses only say which fields they observe."""

    kind: ClassVar[str]
    schema: ClassVar[Schema]
    #: How often this sensor fires relative to the others.
    weight: ClassVar[float]

    def generate(
        self, rng: random.Random, citizen: Citizen, at_ms: int, population: Sequence[Citizen]
    ) -> Record:
        """One event about ``citizen`` at ``at_ms`` (epoch milliseconds)."""
        event_id = random_uuid(rng)
        sensor_id, fields = self.observe(rng, citizen, population)
        return {
            "event_id": event_id,
            "citizen_id": citizen.id,
            "sensor_id": sensor_id,
            "occurred_at": millis_to_datetime(at_ms),
            **fields,
        }

    @abstractmethod
    def observe(
        self, rng: random.Random, citizen: Citizen, population: Sequence[Citizen]
    ) -> tuple[str, Record]:
        """The sensor id and the kind-specific fields of one observation."""
