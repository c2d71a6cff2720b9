"""Bookshop tills: which titles a citizen buys."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Planned, Sensor, between, how_many
from producers.population import Citizen
from schemas.codec import BOOK

CATEGORIES = ("APPROVED", "NEUTRAL", "SENSITIVE", "BANNED")
# (isbn, title) per category. Titles are real books; the categories are the demo's.
CATALOGUE = {
    "APPROVED": (
        ("9787119090576", "Xi Jinping: The Governance of China"),
        ("9787010164328", "Selected Works of Deng Xiaoping"),
    ),
    "NEUTRAL": (
        ("9787536692930", "三体 (The Three-Body Problem)"),
        ("9787020002207", "红楼梦 (Dream of the Red Chamber)"),
        ("9787020042494", "Le Petit Prince"),
        ("9787506365437", "活着 (To Live)"),
    ),
    "SENSITIVE": (
        ("9787544253994", "Nineteen Eighty-Four"),
        ("9787532751457", "Brave New World"),
    ),
    "BANNED": (
        ("9789881745262", "墓碑 (Tombstone)"),
        ("9780385534338", "盛世 (The Fat Years)"),
        ("9780061998225", "The Tiananmen Papers"),
    ),
}


class BookshopTill(Sensor):
    kind = "book"
    schema = BOOK

    def plan(
        self, rng: random.Random, citizen: Citizen, day_ms: int, population: Sequence[Citizen]
    ) -> list[Planned]:
        plans = []
        for _ in range(how_many(rng, citizen.traits.books)):
            category = rng.choices(CATEGORIES, weights=citizen.traits.book_mix)[0]
            isbn, title = rng.choice(CATALOGUE[category])
            at = between(rng, day_ms, 10, 21)
            plans.append(self.sale(rng, at, citizen.home_district, category, isbn, title))
        return plans

    def sale(
        self, rng: random.Random, at: int, district: str, category: str, isbn: str, title: str
    ) -> Planned:
        """One title sold at a till of ``district`` at ``at``."""
        return Planned(
            at,
            {
                "isbn": isbn,
                "title": title,
                "category": category,
                "price_cents": rng.randrange(1_500, 12_000),
            },
            f"till-{district.lower()}-{rng.randrange(20):02d}",
        )
