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


@dataclass(frozen=True, slots=True, kw_only=True)
class Persona:
    """How a kind of citizen spends a day: each weight is an expected count per day.

    Keyword-only: each persona below names every number it sets."""

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


#: Calibrated (rules version 3) so that a week of the default city puts about 1.2% of
#: its citizens on the blacklist, the share of China's population aged 15 and over on
#: the court defaulter list (README: The calibrated scale). Activists are 1.9%.
PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="commuter",
        share=0.311,
        commute=0.95,
        meals=1.2,
        groceries=0.6,
        late_gaming=0.0,
        gaming=0.1,
        alcohol=0.2,
        baby=0.02,
        charity=0.02,
        fines=0.03,
        travel=0.05,
        books=0.08,
        book_mix=(0.2, 0.7, 0.1, 0.0),
        street=1.0,
        street_mix=(90, 6, 2, 1, 1),
        gatherings=0.0,
        fare_evasion=0.01,
    ),
    Persona(
        name="student",
        share=0.15,
        commute=0.8,
        meals=1.5,
        groceries=0.3,
        late_gaming=0.2,
        gaming=0.5,
        alcohol=0.2,
        baby=0.0,
        charity=0.01,
        fines=0.02,
        travel=0.05,
        books=0.4,
        book_mix=(0.2, 0.6, 0.18, 0.02),
        street=1.2,
        street_mix=(85, 9, 3, 1, 2),
        gatherings=0.01,
        fare_evasion=0.03,
    ),
    Persona(
        name="night owl",
        share=0.09,
        commute=0.5,
        meals=1.3,
        groceries=0.4,
        late_gaming=0.8,
        gaming=0.4,
        alcohol=0.6,
        baby=0.0,
        charity=0.0,
        fines=0.05,
        travel=0.05,
        books=0.1,
        book_mix=(0.1, 0.8, 0.1, 0.0),
        street=1.0,
        street_mix=(85, 8, 5, 1, 1),
        gatherings=0.0,
        fare_evasion=0.03,
    ),
    Persona(
        name="gamer",
        share=0.09,
        commute=0.6,
        meals=1.2,
        groceries=0.3,
        late_gaming=1.4,
        gaming=1.5,
        alcohol=0.2,
        baby=0.0,
        charity=0.0,
        fines=0.03,
        travel=0.02,
        books=0.05,
        book_mix=(0.1, 0.85, 0.05, 0.0),
        street=0.6,
        street_mix=(90, 6, 3, 0.5, 0.5),
        gatherings=0.0,
        fare_evasion=0.02,
    ),
    Persona(
        name="parent",
        share=0.15,
        commute=0.8,
        meals=1.0,
        groceries=1.0,
        late_gaming=0.0,
        gaming=0.05,
        alcohol=0.1,
        baby=0.6,
        charity=0.05,
        fines=0.02,
        travel=0.05,
        books=0.1,
        book_mix=(0.3, 0.7, 0.0, 0.0),
        street=1.0,
        street_mix=(88, 3, 1, 5, 3),
        gatherings=0.0,
        fare_evasion=0.005,
    ),
    Persona(
        name="retiree",
        share=0.12,
        commute=0.3,
        meals=1.0,
        groceries=1.0,
        late_gaming=0.0,
        gaming=0.0,
        alcohol=0.1,
        baby=0.05,
        charity=0.1,
        fines=0.01,
        travel=0.05,
        books=0.15,
        book_mix=(0.5, 0.5, 0.0, 0.0),
        street=1.4,
        street_mix=(80, 4, 1, 8, 7),
        gatherings=0.0,
        fare_evasion=0.0,
    ),
    Persona(
        name="pious reader",
        share=0.07,
        commute=0.7,
        meals=1.0,
        groceries=0.5,
        late_gaming=0.0,
        gaming=0.0,
        alcohol=0.0,
        baby=0.05,
        charity=0.3,
        fines=0.0,
        travel=0.05,
        books=0.9,
        book_mix=(0.8, 0.2, 0.0, 0.0),
        street=1.0,
        street_mix=(80, 1, 0, 9, 10),
        gatherings=0.0,
        fare_evasion=0.0,
    ),
    Persona(
        name="activist",
        share=0.019,
        commute=0.7,
        meals=1.0,
        groceries=0.4,
        late_gaming=0.1,
        gaming=0.1,
        alcohol=0.3,
        baby=0.0,
        charity=0.1,
        fines=0.1,
        travel=0.2,
        books=1.2,
        book_mix=(0.0, 0.4, 0.3, 0.3),
        street=1.5,
        street_mix=(80, 10, 2, 4, 4),
        gatherings=0.3,
        fare_evasion=0.05,
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
