"""The simulated city is deterministic and pure."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from producers.city import SENSORS, generate_events, population
from producers.population import generate_population


def digest(events) -> str:
    h = hashlib.sha256()
    for ev in events:
        h.update(ev.kind.encode())
        h.update(ev.encode())
    return h.hexdigest()


def test_same_seed_same_bytes():
    assert digest(generate_events(11, 300, 2000)) == digest(generate_events(11, 300, 2000))


def test_other_seed_other_bytes():
    assert digest(generate_events(11, 300, 500)) != digest(generate_events(12, 300, 500))


def test_population_is_seeded():
    assert population(5, 100) == population(5, 100)
    assert population(5, 100) != population(6, 100)
    people = generate_population(random.Random(1), 1000)
    assert len({p.id for p in people}) == 1000
    assert any(not p.name.isascii() for p in people)


def test_a_prefix_of_the_stream_is_the_shorter_stream():
    long = [ev.encode() for ev in generate_events(2, 100, 300)]
    short = [ev.encode() for ev in generate_events(2, 100, 200)]
    assert long[:200] == short


def test_every_sensor_kind_fires_and_clock_moves_forward():
    events = list(generate_events(4, 100, 3000))
    kinds = Counter(ev.kind for ev in events)
    assert set(kinds) == set(SENSORS)
    times = [ev.record["occurred_at"] for ev in events]
    assert times == sorted(times)
    assert len({ev.record["event_id"] for ev in events}) == 3000


def test_kind_filter():
    events = list(generate_events(4, 100, 200, kinds=["book"]))
    assert {ev.kind for ev in events} == {"book"}


def test_events_only_name_citizens_of_the_population():
    ids = {c.id for c in population(9, 50)}
    for ev in generate_events(9, 50, 1000):
        assert ev.citizen_id in ids
        for companion in ev.record.get("companions", []):
            assert companion in ids and companion != ev.citizen_id
