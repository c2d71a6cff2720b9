"""Bookshop tills: which titles a citizen buys."""

from __future__ import annotations

import random
from collections.abc import Sequence

from producers.base import Record, Sensor
from producers.population import Citizen
from schemas.codec import BOOK

# (isbn, title, category). Titles are real books; the categories are the demo's.
CATALOGUE = (
    ("9787010009148", "Xi Jinping: The Governance of China", "APPROVED"),
    ("9787544253994", "三体 (The Three-Body Problem)", "NEUTRAL"),
    ("9780141036144", "Nineteen Eighty-Four", "SENSITIVE"),
    ("9787020002207", "红楼梦 (Dream of the Red Chamber)", "NEUTRAL"),
    ("9789888208395", "Tombstone (墓碑)", "BANNED"),
    ("9780374533199", "The Fat Years (盛世)", "BANNED"),
    ("9787532731077", "Le Petit Prince", "NEUTRAL"),
    ("9787208061644", "Brave New World", "SENSITIVE"),
    ("9787506365437", "活着 (To Live)", "NEUTRAL"),
)


class BookshopTill(Sensor):
    kind = "book"
    schema = BOOK
    weight = 1.0

    def observe(
        self, rng: random.Random, citizen: Citizen, population: Sequence[Citizen]
    ) -> tuple[str, Record]:
        isbn, title, category = rng.choice(CATALOGUE)
        return f"till-{rng.randrange(40):02d}", {
            "isbn": isbn,
            "title": title,
            "category": category,
            "price_cents": rng.randrange(1_500, 12_000),
        }
