"""The shared base of every sensor: pure planning (``rng`` in, observations out).

A sensor *plans* what it will observe of a citizen's day, then *obeys* the sanctions
in force at the moment it observes (a gate closes, a terminal refuses, a camera flags).
"""

from __future__ import annotations

import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol

from producers.population import Citizen
from schemas.codec import Schema

Record = dict[str, Any]
HOUR = 3_600_000
MINUTE = 60_000
BEIJING = timezone(timedelta(hours=8))


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (so reproducible, unlike ``uuid.uuid4``)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def millis_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def how_many(rng: random.Random, expected: float) -> int:
    """A small count whose mean is ``expected``."""
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def around(rng: random.Random, day_ms: int, hour: float, spread_min: float) -> int:
    """A moment near ``hour`` (local time) on the day starting at ``day_ms``."""
    return day_ms + int(hour * HOUR + rng.uniform(-spread_min, spread_min) * MINUTE)


def between(rng: random.Random, day_ms: int, start_h: float, end_h: float) -> int:
    return day_ms + int(rng.uniform(start_h, end_h) * HOUR)


class Sanctions(Protocol):
    """What the sensors know of the blacklist when they observe someone."""

    def is_blacklisted(self, citizen_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Planned:
    """One observation a sensor will make, unless the day changes first."""

    at_ms: int
    fields: Record
    sensor_id: str


class Sensor(ABC):
    """One kind of sensor network."""

    kind: ClassVar[str]
    schema: ClassVar[Schema]

    @abstractmethod
    def plan(
        self, rng: random.Random, citizen: Citizen, day_ms: int, population: Sequence[Citizen]
    ) -> list[Planned]:
        """What this sensor will observe of ``citizen`` on the day starting at ``day_ms``."""

    def obey(self, fields: Record, citizen_id: str, sanctions: Sanctions) -> Record:
        """The observation as made under the sanctions in force (default: unchanged)."""
        return fields

    def record(self, event_id: str, citizen: Citizen, planned: Planned, fields: Record) -> Record:
        return {
            "event_id": event_id,
            "citizen_id": citizen.id,
            "sensor_id": planned.sensor_id,
            "occurred_at": millis_to_datetime(planned.at_ms),
            **fields,
        }
