"""Seeks, give-ups, stalls, commits and lag, decided on a clock the test turns."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from processors.core.gate import Position
from processors.core.progress import Progress

SRC = ("sensors.metro", 2)


def test_a_hole_answered_by_the_same_offset_is_given_up_after_n_seeks():
    p = Progress(seek_every_s=1.0, give_up_after=3)
    assert p.on_hole(SRC, 10, 14, now=0.0) == "seek"
    assert p.on_hole(SRC, 10, 14, now=0.5) == "wait", "a seek is under way"
    assert p.on_hole(SRC, 10, 14, now=1.0) == "seek"
    assert p.on_hole(SRC, 10, 14, now=2.0) == "seek"
    assert p.on_hole(SRC, 10, 14, now=3.0) == "give-up", "three seeks found 14 again"
    assert p.on_hole(SRC, 10, 14, now=3.1) == "seek", "a new count starts"


def test_records_fetched_before_a_seek_do_not_count_towards_giving_up():
    """They arrive after the seek, further on each time: the re-fetch is still coming."""
    p = Progress(seek_every_s=1.0, give_up_after=2)
    for i, found in enumerate((1330, 2371, 3408, 5104, 7000, 8382)):
        assert p.on_hole(SRC, 1310, found, now=float(i)) == "seek"


def test_a_seek_that_worked_resets_the_count():
    p = Progress(give_up_after=2)
    p.on_hole(SRC, 10, 12, now=0.0)
    p.on_hole(SRC, 10, 12, now=1.0)
    p.moved(SRC, 11, now=1.5)
    assert p.on_hole(SRC, 20, 22, now=2.0) == "seek"
    assert p.seeks[SRC][2] == 1


def test_a_position_unmoved_below_the_high_water_is_stalled():
    p = Progress(stall_s=3.0, seek_every_s=1.0)
    assert not p.stalled(SRC, 5, 9, now=0.0)
    assert not p.stalled(SRC, 5, 9, now=2.9)
    assert p.stalled(SRC, 5, 9, now=3.0)
    assert not p.stalled(SRC, 5, 9, now=5.5), "one stall seek per stall period"
    assert p.stalled(SRC, 5, 9, now=6.0)
    assert not p.stalled(SRC, 6, 9, now=6.5), "it moved"
    assert not p.stalled(SRC, 9, 9, now=20.0), "caught up"
    assert not p.stalled(SRC, 9, None, now=30.0), "no high-water known yet"


def test_a_position_past_the_high_water_is_caught_up_not_stalled_nor_negative():
    """A broker that reports a high-water mark behind its log (Tansu's ListOffsets is a
    batch behind: docs/tansu-high-watermark.md) puts the position past it."""
    p = Progress(stall_s=3.0)
    assert not p.stalled(SRC, 12, 9, now=0.0)
    assert not p.stalled(SRC, 12, 9, now=10.0)
    p.seen_highwater(SRC, 12, 9)
    assert p.lag[SRC] == 0 and p.total_lag == 0


def test_a_partition_whose_records_are_arriving_is_not_stalled():
    """A backlog elsewhere can hold a position still; seeking then would only refetch."""
    p = Progress(stall_s=3.0)
    p.stalled(SRC, 5, 9, now=0.0)
    p.delivered[SRC] = 2.5
    assert not p.stalled(SRC, 5, 9, now=4.0)
    assert p.stalled(SRC, 5, 9, now=5.5)


def test_commits_only_what_moved_and_forgets_revoked_partitions():
    p = Progress()
    assert p.to_commit(SRC, 0)
    p.committed[SRC] = 7
    assert not p.to_commit(SRC, 7) and p.to_commit(SRC, 8)
    p.forget({SRC})
    assert p.to_commit(SRC, 7)


def test_lag_is_logged_while_behind_and_once_caught_up(caplog):
    log = logging.getLogger("lag-test")
    p = Progress(lag_log_s=30.0)
    with caplog.at_level(logging.INFO, "lag-test"):
        p.seen_highwater(SRC, 5, 9)
        p.maybe_log_lag(log, now=0.0)
        p.maybe_log_lag(log, now=10.0)
        p.seen_highwater(SRC, 9, 9)
        p.maybe_log_lag(log, now=11.0)
        p.maybe_log_lag(log, now=50.0)
    assert [r.getMessage() for r in caplog.records] == [
        "harvester lag: 4 events (sensors.metro[2] 4)",
        "harvester lag: 0 events",
    ]


def test_a_partition_waiting_for_the_registry_seeks_back_and_never_gives_up():
    """Nothing is missing at the offset it waits at: no seek there counts towards
    dead-lettering a range, however long the registry is away."""
    p = Progress(seek_every_s=1.0, give_up_after=2)
    assert p.on_wait(SRC, 40, now=0.0) is True
    assert p.on_wait(SRC, 40, now=0.5) is False, "at most one seek a second"
    for i in range(1, 8):  # the records fetched before each seek, at the same offset
        assert p.on_hole(SRC, 40, 45, now=float(i)) == "seek"
        assert p.on_wait(SRC, 40, now=i + 0.5) is False
    p.moved(SRC, 41, now=9.0)  # the registry answered
    assert SRC not in p.waiting
    assert p.on_hole(SRC, 41, 45, now=10.0) == "seek"
    assert p.on_hole(SRC, 41, 45, now=11.0) == "seek"
    assert p.on_hole(SRC, 41, 45, now=12.0) == "give-up", "a real gap counts again"


def test_two_flushes_of_one_snapshot_land_in_any_order():
    """A partition that has seen only refused messages has the watermark None; the
    timer's flush and a batch's may both land with that snapshot (found by the hostile
    drill: wrong-partition messages on an otherwise empty partition crashed the agent)."""
    p = Progress()
    p.written[SRC] = None
    snapshot = dict(p.written)
    p.flushed(snapshot)
    p.flushed(snapshot)
    assert SRC not in p.written and p.durable[SRC] is None


def test_a_source_stands_where_the_last_plan_left_it_once_its_durable_mark_is_seeded():
    t = datetime(2026, 3, 1, tzinfo=UTC)
    reads = []

    def stored(src):
        reads.append(src)
        return Position(4, t)

    p = Progress()
    assert p.stands(SRC, stored) == Position(4, t) and p.durable[SRC] == t
    p.planned_to({SRC: (Position(9, None), 3)})
    assert p.stands(SRC, stored) == Position(9, None)
    assert reads == [SRC], "the store is read once"
    p.replan()
    assert p.stands(SRC, stored) == Position(4, t)


def test_a_range_given_up_moves_the_plan_on_unless_a_batch_is_already_past_it():
    p = Progress()
    p.planned_to({SRC: (Position(5), 0)})
    p.skipped_to(SRC, Position(8), now=1.0)
    assert p.planned[SRC] == Position(8) and p.since[SRC] == (8, 1.0)
    p.planned_to({SRC: (Position(12), 0)})
    p.skipped_to(SRC, Position(10), now=2.0)
    assert p.planned[SRC] == Position(12)


def test_watermarks_written_become_durable_once_flushed():
    t = datetime(2026, 3, 1, tzinfo=UTC)
    p = Progress()
    p.wrote(SRC, Position(3, t))
    snapshot = p.unflushed()
    p.wrote(SRC, Position(4, None))
    p.flushed(snapshot)
    assert p.durable[SRC] == t and p.written == {SRC: None}, "the later write is pending"
