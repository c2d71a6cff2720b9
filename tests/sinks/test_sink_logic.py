"""Per-batch deduplication keeps the newest double of each citizen."""

from sinks.base import latest_per_citizen


def test_latest_version_per_citizen_wins():
    batch = [
        {"citizen_id": "a", "version": 1},
        {"citizen_id": "b", "version": 4},
        {"citizen_id": "a", "version": 3},
        {"citizen_id": "a", "version": 2},
    ]
    assert sorted((d["citizen_id"], d["version"]) for d in latest_per_citizen(batch)) == [
        ("a", 3),
        ("b", 4),
    ]
