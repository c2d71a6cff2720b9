"""Metro gates: who entered or left which station, and how they paid."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Record, Sensor
from producers.population import Citizen
from schemas.codec import METRO

STATIONS = (
    ("Xizhimen", "2"),
    ("Dongzhimen", "2"),
    ("Guomao", "1"),
    ("Wangfujing", "1"),
    ("Zhongguancun", "4"),
    ("Tiananmen East", "1"),
    ("Sanlitun", "10"),
    ("Wudaokou", "13"),
)


class MetroGate(Sensor):
    kind = "metro"
    schema = METRO
    weight = 4.0

    def observe(
        self, rng: random.Random, citizen: Citizen, population: Sequence[Citizen]
    ) -> tuple[str, Record]:
        station, line = rng.choice(STATIONS)
        gate = rng.randrange(12)
        ticket = rng.choices(("FACE", "CARD", "QR", "NONE"), weights=(40, 30, 28, 2))[0]
        return f"gate-{station.lower().replace(' ', '-')}-{gate:02d}", {
            "station": station,
            "line": line,
            "direction": rng.choice(("ENTRY", "EXIT")),
            "ticket": ticket,
            "fare_cents": 0 if ticket == "NONE" else rng.choice((300, 400, 500, 600)),
        }
