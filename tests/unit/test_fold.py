"""The pure fold: deterministic, order-independent, and explainable."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from processors.fold import Event, fold, fold_all, new_double
from processors.scoring import RulesError, load_rules
from producers.city import generate_events


def events(n=2000, seed=21, citizens=60):
    return [Event(e.kind, e.record) for e in generate_events(seed, citizens, n)]


def test_fold_does_not_mutate_its_input():
    ev = events(1)[0]
    before = new_double(ev.citizen_id)
    snapshot = {**before, "rule_hits": dict(before["rule_hits"])}
    after = fold(before, ev)
    assert before == snapshot
    assert after["version"] == 1


def test_fold_is_order_independent():
    evs = events()
    expected = fold_all(evs)
    for seed in range(3):
        shuffled = evs[:]
        random.Random(seed).shuffle(shuffled)
        assert fold_all(shuffled) == expected


def test_score_is_base_plus_the_deltas_of_the_rules_that_fired():
    rules = load_rules()
    for double in fold_all(events()).values():
        explained = sum(rules.rule(r).delta * n for r, n in double["rule_hits"].items())
        assert double["score"] == rules.base_score + explained
        assert double["version"] == sum(
            double[f"{k}_count"] for k in ("metro", "payment", "book", "camera")
        )
        assert double["first_seen"] <= double["last_seen"]


def test_known_event_scores_exactly():
    ev = next(e for e in events() if e.kind == "book" and e.record["category"] == "BANNED")
    d = fold(None, ev)
    assert d["score"] == load_rules().base_score - 30
    assert d["rule_hits"] == {"book.banned": 1}
    assert d["book_count"] == 1


def test_folding_into_another_citizens_double_is_refused():
    evs = events()
    d = fold(None, evs[0])
    other = next(e for e in evs if e.citizen_id != evs[0].citizen_id)
    with pytest.raises(ValueError, match="folded into the double of"):
        fold(d, other)


def test_every_rule_is_explained_and_sourced():
    rules = load_rules()
    assert rules.blacklist_threshold == 350
    for rule in rules.rules:
        assert rule.explanation and rule.mirrors and rule.source, rule.id


def test_a_broken_rules_file_names_itself(tmp_path: Path):
    bad = tmp_path / "rules.toml"
    bad.write_text(
        'base_score = 600\nblacklist_threshold = 350\n[[rule]]\nid = "x"\nkind = "tv"\n'
        'delta = 1\nexplanation = "e"\nmirrors = "m"\nsource = "s"\n'
    )
    with pytest.raises(RulesError, match=r"rules\.toml.*unknown kind 'tv'"):
        load_rules(bad)
    bad.write_text("this is = = not toml")
    with pytest.raises(RulesError, match=r"rules\.toml"):
        load_rules(bad)
