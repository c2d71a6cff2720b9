"""Payment terminals: real-name purchases by merchant category."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Record, Sensor
from producers.population import Citizen
from schemas.codec import PAYMENT

MERCHANTS = {
    "GROCERIES": ("Wumart", "Jingkelong", "Hema Fresh"),
    "RESTAURANT": ("Quanjude", "Haidilao", "食堂 No. 3"),
    "ALCOHOL": ("Red Star Erguotou shop", "Niulanshan outlet"),
    "GAMING": ("Tencent Games", "NetEase Games", "Internet café 网吧"),
    "BABY": ("Babycare", "Kidswant"),
    "CHARITY": ("China Foundation for Poverty Alleviation", "Red Cross donation box"),
    "FINES": ("Traffic police", "Beijing Water utility (overdue)"),
    "TRANSPORT": ("DiDi", "Hellobike"),
    "OTHER": ("Taobao", "JD.com"),
}
WEIGHTS = {
    "GROCERIES": 30,
    "RESTAURANT": 25,
    "ALCOHOL": 6,
    "GAMING": 8,
    "BABY": 4,
    "CHARITY": 3,
    "FINES": 3,
    "TRANSPORT": 12,
    "OTHER": 9,
}


class PaymentTerminal(Sensor):
    kind = "payment"
    schema = PAYMENT
    weight = 3.0

    def observe(
        self, rng: random.Random, citizen: Citizen, population: Sequence[Citizen]
    ) -> tuple[str, Record]:
        category = rng.choices(tuple(WEIGHTS), weights=tuple(WEIGHTS.values()))[0]
        merchant = rng.choice(MERCHANTS[category])
        return f"pos-{category.lower()}-{rng.randrange(500):03d}", {
            "merchant": merchant,
            "category": category,
            "amount_cents": rng.randrange(100, 50_000),
            "currency": "CNY",
        }
