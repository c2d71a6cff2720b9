"""The offset gate alone: strict offset order per partition, holes, waits, ownership,
and watermarks that only move forward (the planner's delivery part)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.core.gate import Hole, Incoming, OffsetGate, Position

METRO, CAMERA = ("sensors.metro", 0), ("sensors.camera", 1)
T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


def msg(src, offset):
    return Incoming(src[0], src[1], offset, b"c0000001", b"")


def pass_all(gate, batch, when=lambda i: None):
    """Admit and take what passes; the indices that passed."""
    passed = []
    for i, m in enumerate(batch):
        if gate.admit(i, m):
            gate.take(i, m, when(i))
            passed.append(i)
    return passed


def test_messages_pass_in_offset_order_from_the_stored_position():
    gate = OffsetGate(lambda src: Position(3))
    batch = [msg(METRO, o) for o in range(1, 6)]
    assert pass_all(gate, batch) == [2, 3, 4]
    assert gate.redelivered == 2 and gate.applied == 3
    assert gate.positions == {METRO: (Position(6), 4)}
    assert gate.seen == {METRO}


def test_a_hole_stops_its_partition_only():
    gate = OffsetGate(lambda src: Position())
    batch = [msg(METRO, 0), msg(METRO, 2), msg(CAMERA, 0), msg(METRO, 3), msg(CAMERA, 1)]
    assert pass_all(gate, batch) == [0, 2, 4]
    assert gate.holes == {METRO: Hole(1, 2, 1)}
    assert gate.stands(METRO) == Position(1) and gate.stands(CAMERA) == Position(2)


def test_a_wait_stops_its_partition_at_the_message_that_waits():
    gate = OffsetGate(lambda src: Position())
    first, second, third = msg(METRO, 0), msg(METRO, 1), msg(METRO, 2)
    assert gate.admit(0, first)
    gate.take(0, first, None)
    assert gate.admit(1, second)
    gate.wait(second)
    assert not gate.admit(2, third)
    assert gate.waiting == {METRO: 1} and gate.positions == {METRO: (Position(1), 0)}


def test_partitions_not_assigned_are_refused_and_counted():
    gate = OffsetGate(lambda src: Position(), assigned={CAMERA})
    assert pass_all(gate, [msg(METRO, 0), msg(CAMERA, 0), msg(METRO, 1)]) == [1]
    assert gate.unassigned == 2 and gate.seen == {CAMERA}


def test_the_watermark_only_moves_forward_and_sets_the_lateness_floor():
    gate = OffsetGate(lambda src: Position(), lateness=timedelta(hours=1))
    assert gate.not_before(METRO) is None, "no event seen yet: anything is accepted"
    times = [T0, T0 + timedelta(hours=2), T0 - timedelta(minutes=30), None]
    pass_all(gate, [msg(METRO, o) for o in range(4)], when=lambda i: times[i])
    assert gate.stands(METRO) == Position(4, T0 + timedelta(hours=2))
    assert gate.not_before(METRO) == T0 + timedelta(hours=1)


def test_the_stored_position_is_read_once_per_source():
    reads = []

    def stored(src):
        reads.append(src)
        return Position(0, T0)

    gate = OffsetGate(stored)
    pass_all(gate, [msg(METRO, o) for o in range(3)])
    assert reads == [METRO]
    assert gate.not_before(METRO) is None, "no lateness allowed: nothing is too late"
