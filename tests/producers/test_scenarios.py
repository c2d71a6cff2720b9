"""Lulu's week: the scripted story unfolds through the ordinary sensors and fold."""

from __future__ import annotations

from processors.core.fold import explained_ledger
from processors.core.oracle import Oracle
from producers.city import City


def test_lulus_week():
    city = City(42, 300, scenario="lulu")
    oracle = Oracle()
    events = list(city.events(days=7, sanctions=oracle))
    lulu, mei = city.cast["lulu"], city.cast["mei"]
    assert lulu.name.startswith("Lulu") and mei.id in {f"c{i:07d}" for i in lulu.ties}
    mine = [e for e in events if e.citizen_id == lulu.id]
    d = oracle.doubles[lulu.id]
    assert d["blacklisted"] and d["score"] < 350
    assert oracle.doubles[mei.id]["blacklist"][0]["entered_at"] < d["blacklist"][0]["entered_at"]
    rules = [e["rule_id"] for e in explained_ledger(d)]
    assert "camera.association" in rules and "camera.gathering" in rules
    assert d["books"].get("Nineteen Eighty-Four") == 1
    denied = [e for e in mine if e.kind == "metro" and e.record["outcome"] == "DENIED"]
    assert len(denied) == 1
    assert denied[0].record["occurred_at"] > d["blacklist"][0]["entered_at"]
    refused = [e for e in mine if e.kind == "payment" and e.record["outcome"] == "REFUSED"]
    assert refused and refused[0].record["category"] == "HIGH_SPEED_RAIL"


def test_the_scenario_is_deterministic():
    a = [e.encode() for e in City(1, 50, scenario="lulu").events(days=7)]
    b = [e.encode() for e in City(1, 50, scenario="lulu").events(days=7)]
    assert a == b
