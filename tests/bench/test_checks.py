"""The bench's refusals: the versions of each key's latest double sum to the distinct
events applied (a shortfall is refused with the numbers), and P4 gates only at a rate
derived from P2 in the same run."""

from __future__ import annotations

import pytest

from bench.checks import NotApplied, applied_events, check_applied, latest_per_key
from processors.core.fold import fold
from schemas.codec import DOUBLE, LEDGER, encode
from tests.factories import ev


def doubles_of(citizen: str, events: int) -> list[bytes]:
    """Each successive double of ``citizen`` as the processor sends it, one per event."""
    out, d = [], None
    for i in range(events):
        d = fold(d, ev("metro", hours=i, citizen=citizen))
        out.append(encode(DOUBLE, d))
    return out


def test_the_latest_value_per_key_wins_and_a_tombstone_removes_it() -> None:
    records = [(b"a", b"1"), (b"b", b"1"), (None, b"x"), (b"a", b"2"), (b"b", None)]
    assert latest_per_key(records) == {b"a": b"2"}
    into = {b"c": b"9"}
    assert latest_per_key([(b"c", b"10"), (b"d", b"1")], into) is into
    assert into == {b"c": b"10", b"d": b"1"}


def test_versions_of_the_latest_doubles_sum_to_the_events_applied() -> None:
    a, b = doubles_of("c0000001", 3), doubles_of("c0000002", 5)
    records = [(b"c0000001", v) for v in a] + [(b"c0000002", v) for v in b]
    latest = latest_per_key(records)
    assert applied_events(latest.values()) == 8
    assert check_applied("faust ×1", "doubles", 8, latest) == 8


def test_every_double_sent_is_not_the_count() -> None:
    """Summing every message, not the latest per key, would count 1+2+3 for three events."""
    a = doubles_of("c0000001", 3)
    assert applied_events(a) == 6
    assert applied_events(latest_per_key((b"c0000001", v) for v in a).values()) == 3


def test_a_shortfall_is_refused_with_framework_expected_and_found() -> None:
    latest = latest_per_key((b"c0000001", v) for v in doubles_of("c0000001", 4))
    with pytest.raises(NotApplied, match=r"Quix: 10 events pre-loaded .* applied 4 \(short by 6\)"):
        check_applied("Quix", "quix.doubles", 10, latest)


def test_a_record_that_is_not_a_double_is_refused() -> None:
    entry = {
        "citizen_id": "c0000001",
        "occurred_at": ev("metro").record["occurred_at"],
        "event_id": "e1",
        "rule_id": "metro.fare-evasion",
        "delta": -10,
    }
    with pytest.raises(NotApplied, match="LedgerEntry"):
        applied_events([encode(LEDGER, entry)])


def test_p4_gates_at_half_of_p2s_one_worker_and_refuses_without_p2() -> None:
    from bench.p4_latency import P4_LOW, p4_rate

    derived = p4_rate(2058.4, fallback=5000)
    assert (derived.rate, derived.gated) == (1029, True)
    assert "2,058 events/s" in derived.how
    alone = p4_rate(None, fallback=5000)
    assert (alone.rate, alone.gated) == (5000, False)
    assert "needs P2 in the same run" in alone.target
    assert not P4_LOW.gated
