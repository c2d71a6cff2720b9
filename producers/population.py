"""A seeded population of simulated citizens. Pure: the same seed gives the same people.

Each citizen has a home and a work district, a persona whose weights drive their days,
and social ties to others (activists mostly know activists).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DISTRICTS = (
    "Dongcheng",
    "Xicheng",
    "Chaoyang",
    "Haidian",
    "Fengtai",
    "Shijingshan",
    "Tongzhou",
    "Changping",
    "Daxing",
    "Shunyi",
)
FAMILY_NAMES = (
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "Lu ",
    "Zhou ",
    "Chen ",
    "Ng ",
    "Åkesson ",
    "O'Brien ",
    "Nguyễn ",
)
GIVEN_NAMES = (
    "芳",
    "伟",
    "娜",
    "敏",
    "静",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "秀英",
    "子涵",
    "Lulu",
    "Wei",
    "Jing",
    "Hao",
    "Mei",
    "Xiaoling",
    "Jun",
    "Yan",
    "Zoë",
    "José",
)


@dataclass(frozen=True, slots=True)
class Persona:
    """How a kind of citizen spends a day: each weight is an expected count per day."""

    name: str
    share: float  # of the population
    commute: float  # probability of a metro round trip on a given day
    meals: float
    groceries: float
    late_gaming: float  # gaming payments between 23:00 and 05:00
    gaming: float
    alcohol: float
    baby: float
    charity: float
    fines: float
    travel: float  # flights, high-speed rail, hotels
    books: float
    book_mix: tuple[float, float, float, float]  # approved, neutral, sensitive, banned
    street: float  # camera sightings
    street_mix: tuple[float, ...]  # passing, jaywalking, littering, helping, volunteering
    gatherings: float
    fare_evasion: float  # probability per metro entry


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "commuter",
        0.28,
        0.95,
        1.2,
        0.6,
        0.0,
        0.1,
        0.2,
        0.02,
        0.02,
        0.03,
        0.05,
        0.08,
        (0.2, 0.7, 0.1, 0.0),
        1.0,
        (90, 6, 2, 1, 1),
        0.0,
        0.01,
    ),
    Persona(
        "student",
        0.15,
        0.8,
        1.5,
        0.3,
        0.2,
        0.5,
        0.2,
        0.0,
        0.01,
        0.02,
        0.05,
        0.4,
        (0.2, 0.6, 0.18, 0.02),
        1.2,
        (85, 9, 3, 1, 2),
        0.01,
        0.03,
    ),
    Persona(
        "night owl",
        0.09,
        0.5,
        1.3,
        0.4,
        0.8,
        0.4,
        0.6,
        0.0,
        0.0,
        0.05,
        0.05,
        0.1,
        (0.1, 0.8, 0.1, 0.0),
        1.0,
        (85, 8, 5, 1, 1),
        0.0,
        0.03,
    ),
    Persona(
        "gamer",
        0.09,
        0.6,
        1.2,
        0.3,
        1.4,
        1.5,
        0.2,
        0.0,
        0.0,
        0.03,
        0.02,
        0.05,
        (0.1, 0.85, 0.05, 0.0),
        0.6,
        (90, 6, 3, 0.5, 0.5),
        0.0,
        0.02,
    ),
    Persona(
        "parent",
        0.15,
        0.8,
        1.0,
        1.0,
        0.0,
        0.05,
        0.1,
        0.6,
        0.05,
        0.02,
        0.05,
        0.1,
        (0.3, 0.7, 0.0, 0.0),
        1.0,
        (88, 3, 1, 5, 3),
        0.0,
        0.005,
    ),
    Persona(
        "retiree",
        0.12,
        0.3,
        1.0,
        1.0,
        0.0,
        0.0,
        0.1,
        0.05,
        0.1,
        0.01,
        0.05,
        0.15,
        (0.5, 0.5, 0.0, 0.0),
        1.4,
        (80, 4, 1, 8, 7),
        0.0,
        0.0,
    ),
    Persona(
        "pious reader",
        0.07,
        0.7,
        1.0,
        0.5,
        0.0,
        0.0,
        0.0,
        0.05,
        0.3,
        0.0,
        0.05,
        0.9,
        (0.8, 0.2, 0.0, 0.0),
        1.0,
        (80, 1, 0, 9, 10),
        0.0,
        0.0,
    ),
    Persona(
        "activist",
        0.05,
        0.7,
        1.0,
        0.4,
        0.1,
        0.1,
        0.3,
        0.0,
        0.1,
        0.1,
        0.2,
        1.2,
        (0.0, 0.2, 0.3, 0.5),
        1.5,
        (80, 10, 2, 4, 4),
        1.3,
        0.05,
    ),
)
PERSONA_BY_NAME = {p.name: p for p in PERSONAS}


@dataclass(frozen=True, slots=True)
class Citizen:
    id: str
    index: int
    name: str
    home_district: str
    work_district: str
    persona: str
    ties: tuple[int, ...]  # indexes of the citizens this one knows

    @property
    def traits(self) -> Persona:
        return PERSONA_BY_NAME[self.persona]


def citizen_id(index: int) -> str:
    return f"c{index:07d}"


def generate_population(rng: random.Random, size: int) -> list[Citizen]:
    """``size`` citizens drawn from ``rng`` (ids ``c0000000`` upward)."""
    personas = [
        rng.choices(PERSONAS, weights=[p.share for p in PERSONAS])[0].name for _ in range(size)
    ]
    activists = [i for i, p in enumerate(personas) if p == "activist"]
    people = []
    for i in range(size):
        k = rng.randrange(2, 7)
        if personas[i] == "activist" and len(activists) > 1:
            ties = {rng.choice(activists) for _ in range(k)} | {rng.randrange(size)}
        else:
            ties = {rng.randrange(size) for _ in range(k)}
        ties.discard(i)
        people.append(
            Citizen(
                id=citizen_id(i),
                index=i,
                name=f"{rng.choice(FAMILY_NAMES)}{rng.choice(GIVEN_NAMES)}",
                home_district=rng.choice(DISTRICTS),
                work_district=rng.choice(DISTRICTS),
                persona=personas[i],
                ties=tuple(sorted(ties)),
            )
        )
    return people
