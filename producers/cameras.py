"""Street cameras: faces matched, what the person was doing, and who was with them."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Record, Sensor
from producers.population import Citizen
from schemas.codec import CAMERA

LOCATIONS = ("Tiananmen Square", "Sanlitun crossing", "Wudaokou crossing", "Houhai", "798 Art Zone")
BEHAVIOURS = {
    "PASSING": 80,
    "JAYWALKING": 8,
    "LITTERING": 4,
    "HELPING_ELDERLY": 3,
    "VOLUNTEERING": 3,
    "GATHERING": 2,
}


class StreetCamera(Sensor):
    kind = "camera"
    schema = CAMERA
    weight = 2.0

    def observe(
        self, rng: random.Random, citizen: Citizen, population: Sequence[Citizen]
    ) -> tuple[str, Record]:
        location = rng.choice(LOCATIONS)
        behaviour = rng.choices(tuple(BEHAVIOURS), weights=tuple(BEHAVIOURS.values()))[0]
        companions = sorted(
            {c.id for c in rng.sample(population, k=min(len(population), rng.randrange(3)))}
            - {citizen.id}
        )
        return f"cam-{rng.randrange(2000):04d}", {
            "location": location,
            "behaviour": behaviour,
            "confidence": round(rng.uniform(0.6, 1.0), 3),
            "companions": companions,
        }
