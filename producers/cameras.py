"""Street cameras: faces matched, what the person was doing, and who was with them."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Planned, Record, Sanctions, Sensor, between, how_many
from producers.population import Citizen, citizen_id
from schemas.codec import CAMERA

LOCATIONS = ("Sanlitun crossing", "Wudaokou crossing", "Houhai", "Wangfujing", "Guomao bridge")
GATHERING_PLACES = ("Tiananmen Square", "798 Art Zone", "Liangma River")
BEHAVIOURS = ("PASSING", "JAYWALKING", "LITTERING", "HELPING_ELDERLY", "VOLUNTEERING")


class StreetCamera(Sensor):
    kind = "camera"
    schema = CAMERA

    def _sighting(
        self,
        rng: random.Random,
        at: int,
        location: str,
        behaviour: str,
        citizen: Citizen,
        max_companions: int,
    ) -> Planned:
        k = min(len(citizen.ties), rng.randrange(max_companions + 1))
        companions = sorted(citizen_id(i) for i in rng.sample(citizen.ties, k))
        return self.sighting(rng, at, location, behaviour, companions)

    def sighting(
        self, rng: random.Random, at: int, location: str, behaviour: str, companions: list[str]
    ) -> Planned:
        """A camera matching a face at ``location``, with ``companions`` seen beside it."""
        return Planned(
            at,
            {
                "location": location,
                "behaviour": behaviour,
                "confidence": round(rng.uniform(0.6, 1.0), 3),
                "companions": companions,
                "companions_blacklisted": [],
            },
            f"cam-{rng.randrange(2000):04d}",
        )

    def plan(
        self, rng: random.Random, citizen: Citizen, day_ms: int, population: Sequence[Citizen]
    ) -> list[Planned]:
        t = citizen.traits
        plans = []
        for _ in range(how_many(rng, t.street)):
            behaviour = rng.choices(BEHAVIOURS, weights=t.street_mix)[0]
            plans.append(
                self._sighting(
                    rng, between(rng, day_ms, 7, 23), rng.choice(LOCATIONS), behaviour, citizen, 2
                )
            )
        for _ in range(how_many(rng, t.gatherings)):
            plans.append(
                self._sighting(
                    rng,
                    between(rng, day_ms, 14, 21),
                    rng.choice(GATHERING_PLACES),
                    "GATHERING",
                    citizen,
                    3,
                )
            )
        return plans

    def redeem(self, rng: random.Random, citizen: Citizen, day_ms: int) -> list[Planned]:
        """Volunteering by a blacklisted citizen (Beijing lets it clear a metro record)."""
        return [
            self._sighting(
                rng, between(rng, day_ms, 9, 17), rng.choice(LOCATIONS), "VOLUNTEERING", citizen, 1
            )
            for _ in range(how_many(rng, 1.5))
        ]

    def obey(self, fields: Record, citizen_id: str, sanctions: Sanctions) -> Record:
        flagged = [c for c in fields["companions"] if sanctions.is_blacklisted(c)]
        return {**fields, "companions_blacklisted": flagged} if flagged else fields

    def walk_away(self, station: str) -> Record:
        """What a camera sees when a refused citizen leaves the station on foot."""
        return {
            "location": f"{station} station entrance",
            "behaviour": "PASSING",
            "confidence": 0.97,
            "companions": [],
            "companions_blacklisted": [],
        }
