"""Part G's input and arithmetic: one citizen's re-stamped city events at an exact rate,
and ratios against the baseline history with their targets (no timing asserted)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from bench.growth import CITIZEN, Stretch, citizen_events, results


def test_one_citizen_gets_fresh_ids_at_exactly_the_rate_in_time_order() -> None:
    events = list(itertools.islice(citizen_events(seed=3, rate=50), 2000))
    assert {e.citizen_id for e in events} == {CITIZEN}
    assert len({e.event_id for e in events}) == len(events)
    assert {e.kind for e in events} == {"metro", "payment", "book", "camera"}
    gaps = {
        b.record["occurred_at"] - a.record["occurred_at"] for a, b in itertools.pairwise(events)
    }
    assert gaps == {timedelta(days=1) / 50}


def stretch(history: int, seconds: float, double_bytes: float) -> Stretch:
    return Stretch(
        history=history,
        events=100,
        seconds=seconds,
        sent_bytes=int(double_bytes * 100 + 500),
        ledger_messages=10,
        double_bytes_mean=double_bytes,
        double_bytes_max=int(double_bytes) + 10,
        double_bytes_end=int(double_bytes),
        held=350,
        ledger=130,
        marks=30,
        aggregate_keys=250,
    )


def test_ratios_are_against_the_baseline_history_with_their_targets() -> None:
    cost, sent, state = results(stretch(10_000, 0.1, 20_000), stretch(100_000, 0.13, 21_000))
    assert (cost.value, cost.baseline, cost.ratio, cost.met) == (1300.0, 1000.0, 1.3, False)
    assert sent.ratio is not None and sent.met and sent.ratio < 1.2
    assert state.ratio == 1.05 and state.met
    assert state.detail["grown_held"] == 350 and "10,000" in state.target
