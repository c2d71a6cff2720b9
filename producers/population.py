"""A seeded population of simulated citizens. Pure: the same seed gives the same people."""

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
FAMILY_NAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "Lu", "Zhou", "Chen")
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
    "Lulu",
    "Wei",
    "Jing",
    "Hao",
    "Mei",
    "Xiaoling",
    "Jun",
    "Yan",
)


@dataclass(frozen=True, slots=True)
class Citizen:
    id: str
    name: str
    home_district: str


def citizen_id(index: int) -> str:
    return f"c{index:07d}"


def generate_population(rng: random.Random, size: int) -> list[Citizen]:
    """``size`` citizens drawn from ``rng`` (ids ``c0000000`` upward)."""
    return [
        Citizen(
            id=citizen_id(i),
            name=f"{rng.choice(FAMILY_NAMES)}{rng.choice(GIVEN_NAMES)}",
            home_district=rng.choice(DISTRICTS),
        )
        for i in range(size)
    ]
