"""Payment terminals: real-name purchases by merchant category."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Planned, Record, Sanctions, Sensor, around, between, how_many
from producers.population import Citizen
from schemas.codec import PAYMENT

MERCHANTS = {
    "GROCERIES": ("Wumart", "Jingkelong", "Hema Fresh"),
    "RESTAURANT": ("Quanjude", "Haidilao", "食堂 No. 3", "Jianbing cart"),
    "ALCOHOL": ("Red Star Erguotou shop", "Niulanshan outlet"),
    "GAMING": ("Tencent Games", "NetEase Games", "Internet café 网吧"),
    "BABY": ("Babycare", "Kidswant"),
    "CHARITY": ("China Foundation for Poverty Alleviation", "Red Cross donation box"),
    "FINES": ("Traffic police", "Beijing Water utility (overdue)"),
    "TRANSPORT": ("DiDi", "Hellobike"),
    "OTHER": ("Taobao", "JD.com"),
    "FLIGHT": ("Air China", "China Eastern"),
    "HIGH_SPEED_RAIL": ("12306 China Railway",),
    "LUXURY_HOTEL": ("Peninsula Beijing", "Rosewood Beijing"),
}
#: What blacklisted citizens may not buy (the court defaulter list's bans).
LUXURY = frozenset({"FLIGHT", "HIGH_SPEED_RAIL", "LUXURY_HOTEL"})


class PaymentTerminal(Sensor):
    kind = "payment"
    schema = PAYMENT

    def pay(self, rng: random.Random, at: int, category: str, low: int, high: int) -> Planned:
        """One purchase in ``category`` at ``at``, of an amount in [low, high) cents."""
        return Planned(
            at,
            {
                "merchant": rng.choice(MERCHANTS[category]),
                "category": category,
                "amount_cents": rng.randrange(low, high),
                "currency": "CNY",
                "outcome": "APPROVED",
            },
            f"pos-{category.lower()}-{rng.randrange(500):03d}",
        )

    def plan(
        self, rng: random.Random, citizen: Citizen, day_ms: int, population: Sequence[Citizen]
    ) -> list[Planned]:
        t = citizen.traits
        p: list[Planned] = []
        for _ in range(how_many(rng, t.meals)):
            hour = rng.choice((12.5, 19))
            p.append(self.pay(rng, around(rng, day_ms, hour, 50), "RESTAURANT", 1_500, 20_000))
        for _ in range(how_many(rng, t.groceries)):
            p.append(self.pay(rng, between(rng, day_ms, 9, 21), "GROCERIES", 800, 30_000))
        for _ in range(how_many(rng, t.late_gaming)):
            late = day_ms + int(rng.uniform(23, 28.9) * 3_600_000)
            p.append(self.pay(rng, late, "GAMING", 600, 30_000))
        for _ in range(how_many(rng, t.gaming)):
            p.append(self.pay(rng, between(rng, day_ms, 10, 22), "GAMING", 600, 30_000))
        for category, weight, start, end, low, high in (
            ("ALCOHOL", t.alcohol, 17, 23, 2_000, 40_000),
            ("BABY", t.baby, 9, 20, 3_000, 25_000),
            ("CHARITY", t.charity, 9, 21, 1_000, 50_000),
            ("FINES", t.fines, 9, 17, 5_000, 50_000),
            ("TRANSPORT", 0.3, 7, 23, 1_000, 8_000),
            ("OTHER", 0.4, 8, 23, 1_000, 60_000),
        ):
            for _ in range(how_many(rng, weight)):
                p.append(self.pay(rng, between(rng, day_ms, start, end), category, low, high))
        for _ in range(how_many(rng, t.travel)):
            category = rng.choice(sorted(LUXURY))
            p.append(self.pay(rng, between(rng, day_ms, 8, 22), category, 30_000, 400_000))
        return p

    def obey(self, fields: Record, citizen_id: str, sanctions: Sanctions) -> Record:
        if fields["category"] in LUXURY and sanctions.is_blacklisted(citizen_id):
            return {**fields, "outcome": "REFUSED"}
        return fields
