"""What a student can do in a day, and the sensor event each choice becomes.

Every choice is observed by one of the city's own sensors (``producers``): the metro
gate, the payment terminal, the bookshop till or the street camera, with the same
fields, schema and topic as the crowd's events, and the same obedience to the
sanctions in force (a blacklisted student's metro tap is refused by the gate).
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from producers.base import Planned, Sanctions
from producers.bookshop import CATALOGUE, BookshopTill
from producers.cameras import GATHERING_PLACES, LOCATIONS
from producers.city import CAMERA, SENSORS, SensorEvent
from producers.metro import STATIONS, MetroGate
from producers.payments import PaymentTerminal
from producers.population import Citizen

#: The sensors that observe a student (stateless: the city's own kinds, its own camera).
METRO, PAYMENTS, TILLS = MetroGate(), PaymentTerminal(), BookshopTill()

#: Payments a student can make: category, label, amount range in cents.
PURCHASES = {
    "GROCERIES": ("Buy groceries", 2_000, 15_000),
    "ALCOHOL": ("Buy a bottle of baijiu", 3_000, 20_000),
    "GAMING": ("Buy a video game", 1_000, 30_000),
    "BABY": ("Buy diapers and baby goods", 3_000, 25_000),
    "FINES": ("Pay a traffic fine", 5_000, 20_000),
    "CHARITY": ("Give to charity", 1_000, 10_000),
}
#: The bookshop's short list: one title of each category, the banned one last.
BOOKS = {
    "APPROVED": CATALOGUE["APPROVED"][0],
    "NEUTRAL": CATALOGUE["NEUTRAL"][0],
    "SENSITIVE": CATALOGUE["SENSITIVE"][0],
    "BANNED": CATALOGUE["BANNED"][0],
}
#: Street scenes: behaviour, label, where.
SCENES = {
    "gathering": ("GATHERING", "Go to a gathering", GATHERING_PLACES[0]),
    "help": ("HELPING_ELDERLY", "Help an elderly person cross", LOCATIONS[1]),
    "jaywalk": ("JAYWALKING", "Cross against the light", LOCATIONS[0]),
}


class ChoiceError(ValueError):
    """A choice the menu does not offer (the phone only sends what it was offered)."""


@dataclass(frozen=True)
class Choice:
    """One tap: ``what`` names the choice; ``target`` the station, book, purchase or
    classmate it needs."""

    what: str
    target: str = ""


def menu(classmates: dict[str, str]) -> list[dict[str, Any]]:
    """The choices a phone offers, with their targets (``classmates``: id → nickname)."""
    return [
        {
            "what": "metro",
            "label": "Take the metro to…",
            "targets": [
                {"id": d, "label": f"{s} (line {line})"} for d, (s, line) in STATIONS.items()
            ],
        },
        {
            "what": "pay",
            "label": "Spend money on…",
            "targets": [{"id": c, "label": label} for c, (label, _, _) in PURCHASES.items()],
        },
        {
            "what": "book",
            "label": "Buy a book",
            "targets": [{"id": cat, "label": title} for cat, (_, title) in BOOKS.items()],
        },
        *({"what": key, "label": label, "targets": []} for key, (_, label, _) in SCENES.items()),
        {
            "what": "walk",
            "label": "Walk with a classmate",
            "targets": [{"id": cid, "label": nick} for cid, nick in classmates.items()],
        },
    ]


def plan(choice: Choice, student: Citizen, at_ms: int, rng: random.Random) -> tuple[str, Planned]:
    """The sensor that observes ``choice`` and what it plans to observe; raises
    :class:`ChoiceError` for a choice not on the menu."""
    what, target = choice.what, choice.target
    if what == "metro" and target in STATIONS:
        fare = rng.choice((300, 400, 500))
        return METRO.kind, METRO.passage(rng, at_ms, student.home_district, "ENTRY", "QR", fare)
    if what == "pay" and target in PURCHASES:
        _, low, high = PURCHASES[target]
        return PAYMENTS.kind, PAYMENTS.pay(rng, at_ms, target, low, high)
    if what == "book" and target in BOOKS:
        isbn, title = BOOKS[target]
        return TILLS.kind, TILLS.sale(rng, at_ms, student.home_district, target, isbn, title)
    if what in SCENES and not target:
        behaviour, _, where = SCENES[what]
        return CAMERA.kind, CAMERA.sighting(rng, at_ms, where, behaviour, [])
    if what == "walk" and target and target != student.id:
        return CAMERA.kind, CAMERA.sighting(rng, at_ms, LOCATIONS[3], "PASSING", [target])
    raise ChoiceError(f"no such choice: {what!r} {target!r}")


def observe(choice: Choice, student: Citizen, at_ms: int, sanctions: Sanctions) -> SensorEvent:
    """The event a sensor records of ``choice``, under the sanctions in force now."""
    rng = random.Random(secrets.randbits(64))
    kind, planned = plan(choice, student, at_ms, rng)
    sensor = SENSORS[kind]
    fields = sensor.obey(planned.fields, student.id, sanctions)
    return SensorEvent(kind, sensor.record(str(uuid.uuid4()), student, planned, fields))
