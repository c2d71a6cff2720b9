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


def test_days_are_deterministic_and_ordered():
    a = digest(generate_events(3, 200, days=2))
    assert a == digest(generate_events(3, 200, days=2))
    assert a != digest(generate_events(3, 200, days=1))


def test_personas_shape_the_days():
    from producers.city import City

    city = City(1, 400)
    events = list(city.events(days=2))
    by_persona: dict[str, Counter] = {}
    for e in events:
        persona = city.people[int(e.citizen_id[1:])].persona
        by_persona.setdefault(persona, Counter())[e.record.get("behaviour")] += 1
    assert by_persona["activist"]["GATHERING"] > 0
    assert by_persona["retiree"]["GATHERING"] == 0


def test_sensors_obey_the_blacklist_and_the_day_changes():
    from processors.core.oracle import Oracle

    oracle = Oracle()
    # On the calibrated scale few are listed within days; Lulu's story makes sure someone is.
    events = list(generate_events(7, 120, days=5, sanctions=oracle, scenario="lulu"))
    denied = [e for e in events if e.kind == "metro" and e.record["outcome"] == "DENIED"]
    assert denied, "someone must be refused at a gate within five days"
    for d in denied:
        cid, at = d.citizen_id, d.record["occurred_at"]
        same_day_metro_after = [
            e
            for e in events
            if e.citizen_id == cid
            and e.kind == "metro"
            and at < e.record["occurred_at"]
            and (e.record["occurred_at"] - at).total_seconds() < 6 * 3600
        ]
        assert same_day_metro_after == [], "a refused citizen takes no more metro that day"
        walks = [
            e
            for e in events
            if e.citizen_id == cid
            and e.kind == "camera"
            and e.record["location"].endswith("station entrance")
        ]
        assert walks, "a camera sees the refused citizen walk away"
    # Whoever was denied was blacklisted by the pure fold of the events before.
    from processors.core.fold import Event, fold_all

    d = denied[0]
    before = [Event(e.kind, e.record) for e in events[: events.index(d)]]
    assert fold_all(before)[d.citizen_id]["blacklisted"]
    allowed_luxury = [
        e
        for e in events
        if e.kind == "payment"
        and e.record["category"] in ("FLIGHT", "HIGH_SPEED_RAIL", "LUXURY_HOTEL")
        and e.record["outcome"] == "APPROVED"
        and oracle.doubles[e.citizen_id]["blacklist"]
        and oracle.doubles[e.citizen_id]["blacklist"][0]["entered_at"] < e.record["occurred_at"]
        and oracle.doubles[e.citizen_id]["blacklist"][0]["lifted_at"] is None
    ]
    assert allowed_luxury == [], "no luxury for the blacklisted"


def test_ties_and_non_ascii_names():
    people = population(2, 1000)
    assert all(p.index not in p.ties for p in people)
    assert sum(1 for p in people if not p.name.isascii()) > 100
    assert {p.persona for p in people} >= {"commuter", "activist", "gamer", "retiree"}
