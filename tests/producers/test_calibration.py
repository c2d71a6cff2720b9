"""The calibrated scale: a week of the default city, without the scripted cast, puts a
sourced share of its citizens on the blacklist, and few of them near the floor.

The band is the share of China's population aged 15 and over on the court defaulter
list (13.3 million of 1,158 million: 1.15%; 14.5 million: 1.25%), widened by a third
either way for one seeded week of 5,000 citizens (README: The calibrated scale;
../shared/notes/social-credit.md).
"""

from __future__ import annotations

from bench.calibration import BAND
from processors.core.fold import default_rules
from processors.core.oracle import Oracle
from processors.core.whatif import NEAR_FLOOR, distribution
from producers.city import City

CITIZENS, DAYS, SEED = 5_000, 7, 42


def test_a_week_of_the_default_city_blacklists_the_sourced_share():
    rules = default_rules()
    oracle = Oracle(rules)
    city = City(SEED, CITIZENS)
    for _ in city.events(DAYS, oracle):
        pass
    d = distribution(oracle.doubles, rules)
    assert d.citizens == CITIZENS
    assert BAND[0] <= d.share <= BAND[1], d
    assert d.floor_share < 0.05, f"{d.near_floor} citizens within {NEAR_FLOOR} of the floor"
    assert all(rules.score_min <= x["score"] <= rules.score_max for x in oracle.doubles.values())
    # Not one persona alone: the blacklisted are mostly activists, never everyone of a kind.
    personas = {p.id: p.persona for p in city.people}
    listed = [personas[c] for c, x in oracle.doubles.items() if x["blacklisted"]]
    activists = sum(1 for p in personas.values() if p == "activist")
    assert listed.count("activist") < activists
