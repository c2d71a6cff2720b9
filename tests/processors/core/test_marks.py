"""The incremental correlation check equals the rescan it replaces, whatever the order."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from processors.core.fold import correlation_entries, default_rules
from processors.core.marks import add_marks, mark_key
from processors.core.scoring import Correlation

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = 3_600_000


def _c(
    cid: str, type_: str, trigger: str, with_: str = "", hours: int = 48, n: int = 1
) -> Correlation:
    return Correlation(
        id=cid,
        delta=-1,
        explanation="",
        mirrors="",
        source="",
        type=type_,
        trigger=trigger,
        with_=with_,
        window_ms=hours * HOUR,
        at_least=n,
    )


RULES = dataclasses.replace(
    default_rules(),
    correlations=(
        _c("w.ab", "within", "a", "b", 48),
        _c("w.ba", "within", "b", "a", 6),
        _c("w.aa", "within", "a", "a", 12),
        _c("r.a3", "repeated", "a", n=3, hours=72),
        _c("r.b1", "repeated", "b", n=1, hours=1),
        _c("r.c2", "repeated", "c", n=2, hours=24),
    ),
)

# An event: its time (hours after T0, whole ms), its id, and the kinds it marks.
events = st.lists(
    st.tuples(
        st.one_of(  # whole hours put marks exactly a window apart, edges included
            st.integers(0, 120).map(lambda h: h * HOUR),
            st.integers(0, 400 * HOUR),
        ).map(lambda m: T0 + timedelta(milliseconds=m)),
        st.sets(st.sampled_from("abc"), min_size=1, max_size=3),
    ),
    max_size=40,
)


def _key(e: dict) -> tuple:
    return (e["occurred_at"], e["event_id"], e["rule_id"], e["delta"])


def _at(*hours_kinds: tuple[int, str]) -> list[tuple[datetime, set[str]]]:
    return [(T0 + timedelta(hours=h), set(k)) for h, k in hours_kinds]


@settings(max_examples=300, deadline=None)
@example(_at((0, "b"), (48, "a"), (50, "b")), None)  # a trigger exactly a window from p
@example(_at((96, "b"), (48, "a"), (47, "b")), None)  # ... and from q
@example(_at((0, "a"), (72, "a"), (72, "a"), (1, "a")), None)  # repeated, edges and ties
@given(events, st.one_of(st.none(), st.integers(0, 400).map(lambda h: T0 + timedelta(hours=h))))
def test_incremental_firings_equal_the_rescan_in_any_arrival_order(evs, since) -> None:
    marks: list[dict] = []
    found: list[dict] = []
    for i, (at, kinds) in enumerate(evs):
        new = [{"kind": k, "occurred_at": at, "event_id": f"e{i:03d}"} for k in kinds]
        marks, fired = add_marks(marks, new, RULES, since)
        found += fired
    assert marks == sorted(marks, key=mark_key)
    expected = correlation_entries(marks, RULES, since)
    assert sorted(map(_key, found)) == sorted(map(_key, expected))
    assert len({(e["event_id"], e["rule_id"]) for e in found}) == len(found)  # each fires once


def test_one_events_firings_come_in_the_rescans_order() -> None:
    at = T0 + timedelta(hours=10)
    marks = [{"kind": "b", "occurred_at": T0, "event_id": "e0"}]
    marks, _ = add_marks(
        marks,
        [{"kind": "a", "occurred_at": T0 + timedelta(hours=1), "event_id": "e1"}],
        RULES,
        None,
    )
    _, fired = add_marks(
        marks, [{"kind": k, "occurred_at": at, "event_id": "e2"} for k in "ab"], RULES, None
    )
    assert [(e["event_id"], e["rule_id"]) for e in fired] == [
        ("e2", "w.ab"),
        ("e2", "w.ba"),
        ("e2", "w.aa"),
        ("e2", "r.b1"),
    ]
