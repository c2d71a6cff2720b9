"""The pure fold and the rules: every rule, correlations, blacklist, dedupe, order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.fold import Event, explained_ledger, fold, fold_all, new_double
from processors.core.held import HELD
from processors.core.oracle import Oracle
from processors.core.scoring import RulesError, load_rules
from producers.city import generate_events
from tests.factories import ev

RULES = load_rules()
BASE = RULES.base_score


def run(*events: Event):
    return fold_all(events)["c0000001"]


def city(n=2500, seed=21, citizens=60):
    return [Event(e.kind, e.record) for e in generate_events(seed, citizens, n)]


# --- single-event rules, each one ------------------------------------------------

SINGLE = [
    ("metro.fare-evasion", ev("metro", ticket="NONE", fare_cents=0), -10),
    ("metro.face-gate", ev("metro", ticket="FACE"), 0),
    ("metro.denied", ev("metro", outcome="DENIED"), 0),
    ("payment.fine", ev("payment", category="FINES"), -20),
    ("payment.gaming", ev("payment", category="GAMING"), -2),
    ("payment.baby", ev("payment", category="BABY"), 5),
    ("payment.alcohol", ev("payment", category="ALCOHOL"), -2),
    ("payment.charity", ev("payment", category="CHARITY"), 10),
    ("payment.refused", ev("payment", category="FLIGHT", outcome="REFUSED"), 0),
    ("book.banned", ev("book", category="BANNED"), -30),
    ("book.sensitive", ev("book", category="SENSITIVE"), 0),
    ("camera.jaywalking", ev("camera", behaviour="JAYWALKING"), -10),
    ("camera.littering", ev("camera", behaviour="LITTERING"), -5),
    ("camera.helping-elderly", ev("camera", behaviour="HELPING_ELDERLY"), 5),
    ("camera.volunteering", ev("camera", behaviour="VOLUNTEERING"), 10),
    ("camera.gathering", ev("camera", behaviour="GATHERING"), -50),
    ("camera.association", ev("camera", companions=["c2"], companions_blacklisted=["c2"]), -15),
]


@pytest.mark.parametrize(("rule_id", "event", "delta"), SINGLE, ids=[s[0] for s in SINGLE])
def test_each_single_event_rule(rule_id, event, delta):
    d = run(event)
    assert d["rule_hits"].get(rule_id) == 1
    assert d["score"] == BASE + delta
    recorded = RULES.rule(rule_id).record  # type: ignore[attr-defined]
    assert [e["rule_id"] for e in d["ledger"]] == ([rule_id] if delta or recorded else [])


def test_every_shipped_rule_is_tested_here():
    tested = {s[0] for s in SINGLE} | {c.id for c in RULES.correlations}
    assert tested == {r.id for r in (*RULES.rules, *RULES.correlations)}


def test_a_neutral_event_changes_nothing_but_counts():
    d = run(ev("payment"))
    assert d["score"] == BASE and d["ledger"] == [] and d["payment_count"] == 1
    assert d["purchases"] == {"GROCERIES": 1}


def test_refused_luxury_and_gaming_refused_do_not_count_as_gaming():
    d = run(ev("payment", category="GAMING", outcome="REFUSED"))
    assert "payment.gaming" not in d["rule_hits"] and d["denied_count"] == 1


# --- correlation rules ---------------------------------------------------------------


def test_banned_book_then_protest_within_48h():
    d = run(ev("book", category="BANNED", hours=0), ev("camera", behaviour="GATHERING", hours=47))
    assert d["rule_hits"]["correlation.banned-book-and-protest"] == 1
    assert d["score"] == BASE - 30 - 50 - 40


def test_protest_then_banned_book_within_48h_counts_too():
    d = run(ev("camera", behaviour="GATHERING", hours=0), ev("book", category="BANNED", hours=30))
    assert d["rule_hits"]["correlation.banned-book-and-protest"] == 1


def test_banned_book_and_protest_too_far_apart():
    d = run(ev("book", category="BANNED", hours=0), ev("camera", behaviour="GATHERING", hours=49))
    assert "correlation.banned-book-and-protest" not in d["rule_hits"]


def test_each_protest_near_a_banned_book_fires_once():
    d = run(
        ev("book", category="BANNED", hours=0),
        ev("book", category="BANNED", hours=1),
        ev("camera", behaviour="GATHERING", hours=2),
        ev("camera", behaviour="GATHERING", hours=3),
    )
    assert d["rule_hits"]["correlation.banned-book-and-protest"] == 2


def late_gaming(hours):  # T0 is 12:00 Beijing: +11 h is 23:00, +14 h is 02:00
    return ev("payment", category="GAMING", hours=hours)


def test_third_late_night_gaming_payment_in_a_week_fires():
    d = run(late_gaming(11), late_gaming(24 + 14), late_gaming(48 + 12))
    assert d["rule_hits"]["correlation.late-night-gaming"] == 1
    d4 = run(late_gaming(11), late_gaming(24 + 14), late_gaming(48 + 12), late_gaming(72 + 11.5))
    assert d4["rule_hits"]["correlation.late-night-gaming"] == 2


def test_daytime_gaming_is_not_late_night():
    d = run(*(ev("payment", category="GAMING", hours=h) for h in (0, 24, 48, 72)))
    assert "correlation.late-night-gaming" not in d["rule_hits"]


def test_late_night_gaming_spread_over_more_than_a_week():
    d = run(late_gaming(11), late_gaming(24 * 4 + 11), late_gaming(24 * 8 + 11))
    assert "correlation.late-night-gaming" not in d["rule_hits"]


def test_association_needs_a_blacklisted_companion():
    d = run(ev("camera", companions=["c0000002"], companions_blacklisted=[]))
    assert "camera.association" not in d["rule_hits"] and d["associates"] == {"c0000002": 1}


# --- the blacklist -------------------------------------------------------------------


def protests(n, start=0.0):
    return [ev("camera", behaviour="GATHERING", hours=start + i) for i in range(n)]


def test_blacklist_enters_under_350_and_lifts_at_400():
    # 600 - 5×50 = 350: not yet under; the sixth takes it to 300.
    d = run(*protests(5))
    assert d["score"] == 350 and not d["blacklisted"] and d["blacklist"] == []
    d = run(*protests(6))
    assert d["score"] == 300 and d["blacklisted"]
    assert d["blacklist"][0]["score_at_entry"] == 300 and d["blacklist"][0]["lifted_at"] is None
    assert d["tier"] == "D"
    volunteering = [ev("camera", behaviour="VOLUNTEERING", hours=10 + i) for i in range(10)]
    d = run(*protests(6), *volunteering[:9])
    assert d["score"] == 390 and d["blacklisted"], "390 is over 350 but under the recovery line"
    d = run(*protests(6), *volunteering)
    assert d["score"] == 400 and not d["blacklisted"]
    assert d["blacklist"][0]["lifted_at"] == volunteering[-1].record["occurred_at"]


def test_blacklist_follows_event_time_not_arrival():
    late_good = ev("camera", behaviour="VOLUNTEERING", hours=-1)  # happened first
    six = protests(6)
    arrives_last = run(*six, late_good)
    arrives_first = run(late_good, *six)
    assert arrives_last == arrives_first
    assert arrives_first["score"] == 310 and arrives_first["blacklisted"]
    assert arrives_first["blacklist"][0]["score_at_entry"] == 310


def test_explained_ledger_walks_the_score():
    d = run(*protests(2))
    rows = explained_ledger(d)
    assert [(r["score_before"], r["score_after"]) for r in rows] == [(600, 550), (550, 500)]
    assert rows[0]["explanation"] == "Seen at a gathering or protest."


def test_the_score_is_clamped_at_every_step_of_the_event_time_walk():
    """At the floor a citizen climbs back from 0, not from below it; the clamp follows
    event time, so the arrival order changes nothing."""
    fall = protests(14)  # 600 - 14×50 would be -100
    good = ev("camera", behaviour="VOLUNTEERING", hours=20)
    assert run(*fall)["score"] == 0
    assert run(*fall, good)["score"] == 10
    rng = random.Random(5)
    shuffled = [*fall, good]
    rng.shuffle(shuffled)
    assert run(*shuffled) == run(*fall, good)
    early = ev("camera", behaviour="VOLUNTEERING", hours=-1)  # before the fall: 610, then 0
    d = run(*fall, good, early)
    assert d["score"] == 10
    assert [r["score_after"] for r in explained_ledger(d)][:2] == [610, 560]
    rise = [ev("camera", behaviour="VOLUNTEERING", hours=h) for h in range(45)]
    assert run(*rise)["score"] == 1000 and run(*rise, *protests(1, 50))["score"] == 950


# --- dedupe, purity, order -----------------------------------------------------------


def test_a_redelivered_event_never_changes_the_double_twice():
    e = ev("book", category="BANNED")
    once = fold(None, e)
    again = fold(once, e)
    assert again is once
    same_id = ev("book", category="BANNED", event_id=e.event_id, hours=5)
    assert fold(once, same_id) is once


def test_fold_does_not_mutate_its_input():
    e1, e2 = ev("camera", behaviour="GATHERING"), ev("book", category="BANNED", hours=1)
    before = fold(None, e1)
    snapshot = repr(before)
    fold(before, e2)
    assert repr(before) == snapshot


def test_folding_into_another_citizens_double_is_refused():
    with pytest.raises(ValueError, match="folded into the double of"):
        fold(new_double("c0000001"), ev("metro", citizen="c0000002"))


def test_score_is_base_plus_the_ledger():
    for d in fold_all(city()).values():
        assert d["score"] == d["base_score"] + sum(e["delta"] for e in d["ledger"])
        assert (
            d["version"]
            == len(d["recent_events"]) // HELD
            == sum(d[f"{k}_count"] for k in ("metro", "payment", "book", "camera"))
        )


CITY = city(1500, seed=5, citizens=25)
EXPECTED = fold_all(CITY)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=3))
def test_order_independence_over_interleavings(seed, redeliveries):
    """Any interleaving, with some events delivered twice, gives the same doubles."""
    rnd = random.Random(seed)
    shuffled = CITY[:]
    rnd.shuffle(shuffled)
    shuffled += rnd.sample(CITY, redeliveries * 10)
    rnd.shuffle(shuffled)
    assert fold_all(shuffled) == EXPECTED


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3), max_size=400))
def test_per_topic_interleaving_like_kafka(picks):
    """Each topic keeps its own order; the four topics interleave however Kafka likes."""
    queues: dict[str, list[Event]] = {}
    for e in CITY:
        queues.setdefault(e.kind, []).append(e)
    merged = []
    picks = iter(picks)
    while queues:
        kinds = sorted(queues)
        k = kinds[next(picks, 0) % len(kinds)]
        merged.append(queues[k].pop(0))
        if not queues[k]:
            del queues[k]
    assert fold_all(merged) == EXPECTED


def test_the_simulation_oracle_is_the_same_fold():
    oracle = Oracle()
    events = list(generate_events(9, 40, 1200, sanctions=oracle))
    assert oracle.doubles == fold_all(Event(e.kind, e.record) for e in events)


# --- the rules file ------------------------------------------------------------------


def test_every_rule_is_explained_and_sourced():
    assert (RULES.blacklist_threshold, RULES.recovery_threshold) == (350, 400)
    for rule in (*RULES.rules, *RULES.correlations):
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
    bad.write_text(
        'base_score = 600\nblacklist_threshold = 350\n[[correlation]]\nid = "c"\n'
        'type = "within"\ntrigger = "nope"\nwith = "x"\nwindow_hours = 1\ndelta = 1\n'
        'explanation = "e"\nmirrors = "m"\nsource = "s"\n'
    )
    with pytest.raises(RulesError, match="no \\[\\[mark\\]\\] defines"):
        load_rules(bad)


def test_a_replacement_rules_file_is_used(tmp_path: Path):
    text = (Path(__file__).parents[3] / "processors" / "rules.toml").read_text()
    custom = tmp_path / "rules.toml"
    custom.write_text(text.replace("base_score = 600", "base_score = 1000"))
    rules = load_rules(custom)
    d = fold_all([ev("book", category="BANNED")], rules)["c0000001"]
    assert d["score"] == 970
