"""Part H's input: one citizen's burst really is marked and correlated, and the default
limits refuse it past the burst cap (no timing asserted)."""

from __future__ import annotations

from bench.hostile import CITIZEN, TOPICS, burst, plan_chunk
from processors.core.planning import Folding
from processors.core.validation import Limits


def test_the_burst_marks_every_event_and_fires_both_correlation_types() -> None:
    _, plan = plan_chunk(None, burst(300), Folding(kinds={t: k for k, t in TOPICS.items()}))
    double = plan.doubles[CITIZEN][0]
    assert len(double["marks"]) == 300 and not plan.dead_letters
    fired = {e["rule_id"] for _, e, _ in plan.ledger}
    assert {"correlation.banned-book-and-protest", "correlation.late-night-gaming"} <= fired


def test_the_default_limits_refuse_the_burst_past_its_cap() -> None:
    cap = Limits().max_burst_events
    _, plan = plan_chunk(None, burst(cap + 30), Folding(kinds={t: k for k, t in TOPICS.items()}))
    assert plan.rejections == {"citizen-burst": 30}
    assert plan.doubles[CITIZEN][0]["version"] == cap
