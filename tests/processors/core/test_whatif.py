"""The what-if core: variant rulebooks, the comparison of two sets of doubles, and the
score distribution."""

from __future__ import annotations

import pytest

from processors.core.fold import default_rules, fold_all
from processors.core.scoring import RulesError
from processors.core.whatif import compare, differing_rules, distribution, parse_sets
from tests.factories import ev

RULES = default_rules()


def test_sets_parse_and_a_bad_one_says_how_to_write_it():
    assert parse_sets(["camera.association=0", " book.banned = -5"]) == {
        "camera.association": 0,
        "book.banned": -5,
    }
    for bad in ("camera.association", "=3", "book.banned=lots"):
        with pytest.raises(RulesError, match="RULE=DELTA"):
            parse_sets([bad])


def test_a_variant_changes_only_the_named_deltas_and_refuses_unknown_ids():
    variant = RULES.with_deltas({"camera.association": 0, "correlation.late-night-gaming": -1})
    assert differing_rules(RULES, variant) == [
        ("camera.association", -15, 0),
        ("correlation.late-night-gaming", -10, -1),
    ]
    assert variant.rule("camera.gathering") == RULES.rule("camera.gathering")
    assert [r.id for r in variant.by_kind["camera"]] == [r.id for r in RULES.by_kind["camera"]]
    with pytest.raises(RulesError, match=r"no rule 'camera.nope'.*camera.association"):
        RULES.with_deltas({"camera.nope": 0})


def protester(citizen: str, n: int, with_blacklisted: bool) -> list:
    return [
        ev(
            "camera",
            citizen=citizen,
            hours=i,
            behaviour="GATHERING",
            companions_blacklisted=["c9"] if with_blacklisted else [],
            companions=["c9"] if with_blacklisted else [],
        )
        for i in range(n)
    ]


def test_compare_names_who_is_freed_who_is_listed_and_the_entries_that_differ():
    # 600 - 4×(50+15) = 340: listed; without association 400: free.
    events = [*protester("c1", 4, True), *protester("c2", 2, False)]
    live = fold_all(events, RULES)
    freed_by = RULES.with_deltas({"camera.association": 0})
    changes = compare(live, fold_all(events, freed_by), RULES, freed_by)
    assert [(c.citizen_id, c.kind) for c in changes] == [("c1", "freed")]
    (c,) = changes
    assert c.score == (340, 400) and c.blacklisted == (True, False) and c.tier == ("D", "C")
    assert [(e.rule_id, e.before, e.after) for e in c.why] == [
        ("camera.association", (4, -60), (0, 0))
    ]
    harsher = RULES.with_deltas({"camera.gathering": -130})  # c2: 600 - 260 = 340
    listed = compare(live, fold_all(events, harsher), RULES, harsher)
    assert [(c.citizen_id, c.kind) for c in listed] == [("c2", "listed")]
    assert compare(live, fold_all(events, RULES), RULES, RULES) == []


def test_the_distribution_covers_the_whole_scale_and_counts_the_floor():
    events = [*protester("c1", 14, False), *protester("c2", 1, False), ev("metro", citizen="c3")]
    d = distribution(fold_all(events, RULES), RULES)
    assert [b for b, _ in d.bands] == list(range(0, 1000, 100))
    assert dict(d.bands)[0] == 1 and dict(d.bands)[500] == 1 and dict(d.bands)[600] == 1
    assert (d.citizens, d.blacklisted, d.near_floor) == (3, 1, 1)
    assert d.share == pytest.approx(1 / 3) and dict(d.percentiles)[50] == 550
