"""Scripted citizens among the simulated crowd, for telling one story in class.

"Lulu's week" follows the documentary: over a simulated week Lulu commutes, shops,
buys a sensitive book, is filmed near a gathering and is seen with a blacklisted
friend. Her score falls under 350 and the next metro gate refuses her. Nothing about
her is special-cased downstream: the same sensors observe her (and obey the
blacklist), and the same fold scores her.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    """One scripted observation: when (day, local hour), which sensor, what it sees."""

    day: int
    hour: float
    kind: str
    fields: Mapping[str, Any]
    sensor_id: str
    story: str


@dataclass(frozen=True)
class Scripted:
    key: str  # how other steps refer to this citizen: "@key"
    name: str
    persona: str
    home: str
    work: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    days: int
    cast: tuple[Scripted, ...]


def metro(day: int, hour: float, station: str, line: str, direction: str, story: str) -> Step:
    return Step(
        day,
        hour,
        "metro",
        {
            "station": station,
            "line": line,
            "direction": direction,
            "ticket": "FACE",
            "fare_cents": 400 if direction == "ENTRY" else 0,
            "outcome": "ALLOWED",
        },
        f"gate-{station.lower().replace(' ', '-')}-01",
        story,
    )


def commute(day: int) -> tuple[Step, ...]:
    return (
        metro(
            day, 8.1, "Tongzhou Beiguan", "6", "ENTRY", "Commutes to work: the gate scans her face."
        ),
        metro(day, 8.9, "Guomao", "1", "EXIT", "Arrives at work."),
        metro(day, 18.4, "Guomao", "1", "ENTRY", "Heads home."),
        metro(day, 19.2, "Tongzhou Beiguan", "6", "EXIT", "Home."),
    )


def pay(day: int, hour: float, category: str, merchant: str, cents: int, story: str) -> Step:
    return Step(
        day,
        hour,
        "payment",
        {
            "merchant": merchant,
            "category": category,
            "amount_cents": cents,
            "currency": "CNY",
            "outcome": "APPROVED",
        },
        f"pos-{category.lower()}-007",
        story,
    )


def book(day: int, hour: float, isbn: str, title: str, category: str, story: str) -> Step:
    return Step(
        day,
        hour,
        "book",
        {
            "isbn": isbn,
            "title": title,
            "category": category,
            "price_cents": 4_500,
        },
        "till-chaoyang-03",
        story,
    )


def seen(
    day: int, hour: float, location: str, behaviour: str, with_: tuple[str, ...], story: str
) -> Step:
    return Step(
        day,
        hour,
        "camera",
        {
            "location": location,
            "behaviour": behaviour,
            "confidence": 0.94,
            "companions": list(with_),
            "companions_blacklisted": [],
        },
        "cam-0451",
        story,
    )


LULU_WEEK = Scenario(
    name="lulu",
    title="Lulu's week",
    days=7,
    cast=(
        Scripted(
            "mei",
            "Mei 梅",
            "activist",
            "Dongcheng",
            "Haidian",
            (
                book(0, 11, "9789881745262", "墓碑 (Tombstone)", "BANNED", "Buys a banned book."),
                seen(0, 16, "Liangma River", "GATHERING", (), "Filmed at a gathering."),
                seen(1, 15, "798 Art Zone", "GATHERING", (), "Filmed at another gathering."),
                seen(1, 17, "Wangfujing", "JAYWALKING", (), "Crosses against the light."),
                seen(2, 15, "Liangma River", "GATHERING", (), "A third gathering: blacklisted."),
            ),
        ),
        Scripted(
            "lulu",
            "Lulu 露露",
            "commuter",
            "Tongzhou",
            "Chaoyang",
            (
                *commute(0),
                pay(0, 12.5, "RESTAURANT", "Jianbing cart", 1_200, "Lunch, paid by face."),
                pay(0, 19.6, "GROCERIES", "Hema Fresh", 8_900, "Groceries on the way home."),
                *commute(1),
                book(
                    1,
                    12.8,
                    "9787544253994",
                    "Nineteen Eighty-Four",
                    "SENSITIVE",
                    "Buys a sensitive book: logged, no points yet.",
                ),
                pay(1, 23.5, "GAMING", "Tencent Games", 3_000, "A late game: noted."),
                *commute(2),
                seen(
                    2,
                    20,
                    "Liangma River",
                    "GATHERING",
                    ("@mei",),
                    "Filmed near a gathering, next to Mei, who is blacklisted.",
                ),
                *commute(3),
                book(
                    3,
                    12.7,
                    "9780061998225",
                    "The Tiananmen Papers",
                    "BANNED",
                    "Buys a banned book within 48 hours of the gathering.",
                ),
                pay(3, 17, "FINES", "Beijing Water utility (overdue)", 9_000, "Pays a late bill."),
                pay(3, 23.5, "GAMING", "Tencent Games", 3_000, "Another late game."),
                *commute(4),
                seen(
                    4,
                    19.5,
                    "Wangfujing",
                    "JAYWALKING",
                    ("@mei",),
                    "Crosses against the light with Mei.",
                ),
                pay(4, 21, "ALCOHOL", "Red Star Erguotou shop", 2_400, "Buys baijiu."),
                pay(
                    4,
                    23.6,
                    "GAMING",
                    "Tencent Games",
                    3_000,
                    "A third late game this week: 'an idle person'.",
                ),
                pay(
                    5,
                    11,
                    "FINES",
                    "Beijing traffic police",
                    20_000,
                    "Pays a fine for her e-bike: her score nears the line.",
                ),
                seen(
                    5,
                    18,
                    "798 Art Zone",
                    "GATHERING",
                    ("@mei",),
                    "Another gathering with Mei: her score falls under 350.",
                ),
                metro(
                    6,
                    9.5,
                    "Tongzhou Beiguan",
                    "6",
                    "ENTRY",
                    "Sunday morning: the gate refuses her.",
                ),
                pay(
                    6,
                    10.5,
                    "HIGH_SPEED_RAIL",
                    "12306 China Railway",
                    55_300,
                    "Tries to buy a train ticket home: refused.",
                ),
            ),
        ),
    ),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (LULU_WEEK,)}
