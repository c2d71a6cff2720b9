"""The simulated city: a population and its sensors, unrolled into one event stream.

Pure and deterministic: the same seed, population size and count give the same
events, byte for byte, whatever publishes them and however fast.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from producers.base import Record, Sensor
from producers.bookshop import BookshopTill
from producers.cameras import StreetCamera
from producers.metro import MetroGate
from producers.payments import PaymentTerminal
from producers.population import Citizen, generate_population
from schemas.codec import encode

SENSORS: dict[str, Sensor] = {
    s.kind: s for s in (MetroGate(), PaymentTerminal(), BookshopTill(), StreetCamera())
}
#: The simulation's epoch: a fixed date, never the wall clock, so runs repeat.
EPOCH_MS = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class SensorEvent:
    kind: str
    record: Record

    @property
    def citizen_id(self) -> str:
        return str(self.record["citizen_id"])

    def encode(self) -> bytes:
        return encode(SENSORS[self.kind].schema, self.record)


def population(seed: int, size: int) -> list[Citizen]:
    return generate_population(random.Random(f"population:{seed}"), size)


def generate_events(
    seed: int,
    citizens: int | Sequence[Citizen],
    count: int,
    kinds: Iterable[str] | None = None,
    start_ms: int = EPOCH_MS,
) -> Iterator[SensorEvent]:
    """``count`` events about a seeded population, on a simulated clock from ``start_ms``."""
    people = population(seed, citizens) if isinstance(citizens, int) else list(citizens)
    if not people:
        raise ValueError("the population is empty")
    chosen = [SENSORS[k] for k in (kinds or SENSORS)]
    weights = [s.weight for s in chosen]
    rng = random.Random(f"events:{seed}")
    at = start_ms
    for _ in range(count):
        at += rng.randrange(1, 30_000)
        sensor = rng.choices(chosen, weights=weights)[0]
        citizen = rng.choice(people)
        yield SensorEvent(sensor.kind, sensor.generate(rng, citizen, at, people))
