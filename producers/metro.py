"""Metro gates: who entered or left which station, how they paid, and who was refused."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Planned, Record, Sanctions, Sensor, around, how_many
from producers.population import Citizen
from schemas.codec import METRO

#: A station (and its line) per district.
STATIONS = {
    "Dongcheng": ("Dongzhimen", "2"),
    "Xicheng": ("Xizhimen", "2"),
    "Chaoyang": ("Guomao", "1"),
    "Haidian": ("Zhongguancun", "4"),
    "Fengtai": ("Beijing South Railway Station", "4"),
    "Shijingshan": ("Pingguoyuan", "1"),
    "Tongzhou": ("Tongzhou Beiguan", "6"),
    "Changping": ("Changping", "Changping"),
    "Daxing": ("Tiangongyuan", "4"),
    "Shunyi": ("Houshayu", "15"),
}
TICKETS = ("FACE", "CARD", "QR")


class MetroGate(Sensor):
    kind = "metro"
    schema = METRO

    def _trip(
        self, rng: random.Random, citizen: Citizen, start: int, origin: str, dest: str
    ) -> list[Planned]:
        evade = rng.random() < citizen.traits.fare_evasion
        ticket = "NONE" if evade else rng.choices(TICKETS, weights=(45, 30, 25))[0]
        fare = 0 if evade else rng.choice((300, 400, 500, 600))
        ride = rng.randrange(15, 65) * 60_000
        return [
            self.passage(rng, at, district, direction, ticket, fare if direction == "ENTRY" else 0)
            for at, district, direction in ((start, origin, "ENTRY"), (start + ride, dest, "EXIT"))
        ]

    def passage(
        self, rng: random.Random, at: int, district: str, direction: str, ticket: str, fare: int
    ) -> Planned:
        """One pass through a gate of ``district``'s station at ``at``."""
        station, line = STATIONS[district]
        gate = f"gate-{station.lower().replace(' ', '-')}-{rng.randrange(12):02d}"
        fields = {
            "station": station,
            "line": line,
            "direction": direction,
            "ticket": ticket,
            "fare_cents": fare,
            "outcome": "ALLOWED",
        }
        return Planned(at, fields, gate)

    def plan(
        self, rng: random.Random, citizen: Citizen, day_ms: int, population: Sequence[Citizen]
    ) -> list[Planned]:
        t = citizen.traits
        plans: list[Planned] = []
        if rng.random() < t.commute:
            plans += self._trip(
                rng,
                citizen,
                around(rng, day_ms, 8, 60),
                citizen.home_district,
                citizen.work_district,
            )
            plans += self._trip(
                rng,
                citizen,
                around(rng, day_ms, 18, 90),
                citizen.work_district,
                citizen.home_district,
            )
        for _ in range(how_many(rng, 0.3)):  # an errand across town
            there = rng.choice(tuple(STATIONS))
            start = around(rng, day_ms, 13, 120)
            plans += self._trip(rng, citizen, start, citizen.home_district, there)
        return plans

    def obey(self, fields: Record, citizen_id: str, sanctions: Sanctions) -> Record:
        if fields["direction"] == "ENTRY" and sanctions.is_blacklisted(citizen_id):
            return {**fields, "outcome": "DENIED", "fare_cents": 0}
        return fields
