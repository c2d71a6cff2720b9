"""The simulated city: a population, its sensors and a clock, unrolled into one stream.

Pure and deterministic: the same seed, population size and duration give the same
events, byte for byte, whatever publishes them, how fast, and into how many partitions.

Each citizen's day is planned from a random generator seeded by (seed, day, citizen),
so no citizen's plan depends on another's. The day's plans are then merged in time
order and observed one by one; at that moment the sensors obey the blacklist as it
stands (a gate closes, a terminal refuses, a camera flags a companion) and a refused
citizen's day changes: no more metro that day, and a camera sees them walk away.

Offline (``moisson simulate``, tests) the blacklist comes from the oracle
(``processors.core.oracle.Oracle``: the pure fold) run over the events emitted so far, so
the feedback is exact and repeatable. Live, it comes from the ``sanctions`` topic and
takes effect when the sanction arrives.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from processors.core.oracle import Oracle
from producers.base import BEIJING, Planned, Record, Sensor
from producers.bookshop import BookshopTill
from producers.cameras import StreetCamera
from producers.metro import MetroGate
from producers.payments import PaymentTerminal
from producers.population import Citizen, citizen_id, generate_population
from producers.scenarios import SCENARIOS, Scenario, Step
from schemas.codec import encode

CAMERA = StreetCamera()
SENSORS: dict[str, Sensor] = {
    s.kind: s for s in (MetroGate(), PaymentTerminal(), BookshopTill(), CAMERA)
}
#: The simulation starts at midnight, Beijing time, on a fixed date: never the wall clock.
EPOCH_MS = int(datetime(2026, 3, 2, tzinfo=BEIJING).timestamp() * 1000)
DAY_MS = 86_400_000
REACTION = uuid.UUID("6f6d6f69-7373-6f6e-2d72-656163746564")


@dataclass(frozen=True, slots=True)
class SensorEvent:
    kind: str
    record: Record

    @property
    def citizen_id(self) -> str:
        return str(self.record["citizen_id"])

    @property
    def occurred_ms(self) -> int:
        return int(self.record["occurred_at"].timestamp() * 1000)

    def encode(self) -> bytes:
        return encode(SENSORS[self.kind].schema, self.record)


class SanctionSource(Protocol):
    """Where the sensors learn who is blacklisted, and what they report back."""

    def is_blacklisted(self, citizen_id: str) -> bool: ...

    def observe(self, event: SensorEvent) -> None: ...


def population(seed: int, size: int) -> list[Citizen]:
    return generate_population(random.Random(f"population:{seed}"), size)


@dataclass(order=True, slots=True)
class _Slot:
    at_ms: int
    citizen: int
    seq: int
    kind: str = field(compare=False)
    planned: Planned = field(compare=False)
    event_id: str = field(compare=False)


class City:
    """A seeded city whose days can be replayed exactly."""

    def __init__(
        self,
        seed: int,
        citizens: int | Sequence[Citizen],
        kinds: Iterable[str] | None = None,
        start_ms: int = EPOCH_MS,
        scenario: str | Scenario | None = None,
    ) -> None:
        self.seed = seed
        self.people = population(seed, citizens) if isinstance(citizens, int) else list(citizens)
        if not self.people:
            raise ValueError("the population is empty")
        self.kinds = tuple(kinds) if kinds else tuple(SENSORS)
        unknown = set(self.kinds) - set(SENSORS)
        if unknown:
            raise ValueError(f"unknown sensor kinds: {', '.join(sorted(unknown))}")
        self.scripted: dict[int, list[Step]] = {}
        self.cast: dict[str, Citizen] = {}
        if scenario is not None:
            self._cast(SCENARIOS[scenario] if isinstance(scenario, str) else scenario)
        self.start_ms = start_ms

    def _cast(self, scenario: Scenario) -> None:
        """Add the scenario's scripted citizens after the crowd, with resolved references."""
        first = len(self.people)
        ids = {s.key: citizen_id(first + i) for i, s in enumerate(scenario.cast)}

        def resolve(value: Any) -> Any:
            if isinstance(value, list):
                return [
                    ids[v[1:]] if isinstance(v, str) and v.startswith("@") else v for v in value
                ]
            return value

        for i, s in enumerate(scenario.cast):
            friends = {
                ids[v[1:]]
                for st in s.steps
                for v in st.fields.get("companions", ())
                if isinstance(v, str) and v.startswith("@")
            }
            person = Citizen(
                id=ids[s.key],
                index=first + i,
                name=s.name,
                home_district=s.home,
                work_district=s.work,
                persona=s.persona,
                ties=tuple(sorted(int(f[1:]) for f in friends)),
            )
            self.people.append(person)
            self.cast[s.key] = person
            self.scripted[person.index] = [
                Step(
                    st.day,
                    st.hour,
                    st.kind,
                    {k: resolve(v) for k, v in st.fields.items()},
                    st.sensor_id,
                    st.story,
                )
                for st in s.steps
            ]

    def plan_day(self, day: int, sanctions: SanctionSource) -> list[_Slot]:
        """Every citizen's plan for ``day``; the blacklisted volunteer to climb back."""
        day_ms = self.start_ms + day * DAY_MS
        slots: list[_Slot] = []
        for person in self.people:
            rng = random.Random(f"{self.seed}:{day}:{person.index}")
            if person.index in self.scripted:
                plans = [
                    (
                        st.kind,
                        Planned(day_ms + int(st.hour * 3_600_000), dict(st.fields), st.sensor_id),
                    )
                    for st in self.scripted[person.index]
                    if st.day == day and st.kind in self.kinds
                ]
            else:
                plans = [
                    (kind, planned)
                    for kind in self.kinds
                    for planned in SENSORS[kind].plan(rng, person, day_ms, self.people)
                ]
                if "camera" in self.kinds and sanctions.is_blacklisted(person.id):
                    plans += [("camera", p) for p in CAMERA.redeem(rng, person, day_ms)]
            for seq, (kind, planned) in enumerate(plans):
                event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                slots.append(_Slot(planned.at_ms, person.index, seq, kind, planned, event_id))
        heapq.heapify(slots)
        return slots

    def events(
        self, days: int | None = None, sanctions: SanctionSource | None = None
    ) -> Iterator[SensorEvent]:
        """The city's events in time order, day after day (forever when ``days`` is None)."""
        sanctions = sanctions if sanctions is not None else Oracle()
        day = 0
        while days is None or day < days:
            yield from self._run_day(self.plan_day(day, sanctions), sanctions)
            day += 1

    def _run_day(self, heap: list[_Slot], sanctions: SanctionSource) -> Iterator[SensorEvent]:
        grounded: set[int] = set()  # refused at a gate: no more metro today
        while heap:
            slot = heapq.heappop(heap)
            if slot.kind == "metro" and slot.citizen in grounded:
                continue
            person = self.people[slot.citizen]
            sensor = SENSORS[slot.kind]
            fields = sensor.obey(slot.planned.fields, person.id, sanctions)
            event = SensorEvent(
                slot.kind, sensor.record(slot.event_id, person, slot.planned, fields)
            )
            sanctions.observe(event)
            yield event
            if fields.get("outcome") == "DENIED":
                grounded.add(slot.citizen)
                if "camera" in self.kinds:
                    walk = Planned(
                        slot.at_ms + 5 * 60_000,
                        CAMERA.walk_away(fields["station"]),
                        f"cam-{slot.planned.sensor_id}",
                    )
                    heapq.heappush(
                        heap,
                        _Slot(
                            walk.at_ms,
                            slot.citizen,
                            1_000_000 + slot.seq,
                            "camera",
                            walk,
                            str(uuid.uuid5(REACTION, slot.event_id)),
                        ),
                    )


def generate_events(
    seed: int,
    citizens: int | Sequence[Citizen],
    count: int | None = None,
    kinds: Iterable[str] | None = None,
    days: int | None = None,
    sanctions: SanctionSource | None = None,
    scenario: str | None = None,
) -> Iterator[SensorEvent]:
    """The first ``count`` events (or ``days`` days) of a seeded city."""
    if count is None and days is None:
        raise ValueError("give a count of events or a number of days")
    stream = City(seed, citizens, kinds, scenario=scenario).events(days, sanctions)
    # islice stops without drawing one event too many (the oracle would see it).
    yield from itertools.islice(stream, count)
