"""Batch planning: strict offset order, holes, ownership, coalesced writes, and the
sanctions a re-delivered batch sends again."""

from __future__ import annotations

from processors.core.fold import fold_all
from processors.core.planning import Folding, Incoming, Position, plan_batch
from schemas.codec import SENSOR_SCHEMAS, encode
from tests.factories import ev

TOPIC = {k: f"sensors.{k}" for k in SENSOR_SCHEMAS}
FOLDING = Folding(kinds={t: k for k, t in TOPIC.items()})


def messages(events, partition=0, start=0):
    return [
        Incoming(
            TOPIC[e.kind],
            partition,
            start + i,
            e.citizen_id.encode(),
            encode(SENSOR_SCHEMAS[e.kind], e.record),
        )
        for i, e in enumerate(events)
    ]


def plan(batch, at=None, stored=None, assigned=None):
    at = at or {}
    stored = stored or {}
    return plan_batch(
        batch,
        lambda src: Position(at.get(src, 0)),
        lambda c, _i: stored.get(c),
        FOLDING,
        assigned,
    )


def stands(p):
    """source -> (next offset, index of the last message applied there)."""
    return {src: (pos.next, i) for src, (pos, i) in p.positions.items()}


def protests(n, citizen="c0000001", start=0.0):
    return [ev("camera", behaviour="GATHERING", hours=start + i, citizen=citizen) for i in range(n)]


def test_a_batch_folds_like_the_oracle_and_writes_each_citizen_once():
    events = [*protests(3), *protests(2, citizen="c0000002"), *protests(2, start=5)]
    p = plan(messages(events))
    want = fold_all(events)
    assert {c: d for c, (d, _) in p.doubles.items()} == want
    assert p.doubles["c0000001"][1] == 6, "the last message of the citizen picks the partition"
    assert stands(p) == {("sensors.camera", 0): (7, 6)}
    assert p.applied == 7 and not p.holes and not p.sanctions


def test_below_the_position_is_a_redelivery_and_skipped():
    events = protests(4)
    p = plan(messages(events), at={("sensors.camera", 0): 2})
    assert p.redelivered == 2 and p.applied == 2
    assert p.doubles["c0000001"][0]["version"] == 2
    assert stands(p)[("sensors.camera", 0)] == (4, 3)


def test_above_the_position_is_a_hole_and_nothing_after_it_is_applied():
    batch = messages(protests(6))
    del batch[2]  # offset 2 never delivered
    p = plan(batch)
    assert stands(p)[("sensors.camera", 0)] == (2, 1)
    hole = p.holes[("sensors.camera", 0)]
    assert (hole.expected, hole.found, hole.index) == (2, 3, 2)
    assert p.doubles["c0000001"][0]["version"] == 2, "offsets 3.. wait for the seek"


def test_a_hole_in_one_partition_does_not_hold_back_another():
    a = messages(protests(3), partition=0)
    b = messages(protests(3, citizen="c0000002"), partition=1)
    p = plan([a[0], b[0], a[2], b[1], b[2]])
    assert stands(p) == {("sensors.camera", 0): (1, 0), ("sensors.camera", 1): (3, 4)}
    assert set(p.holes) == {("sensors.camera", 0)}


def test_events_of_partitions_no_longer_owned_are_refused():
    batch = messages(protests(3), partition=1)
    p = plan(batch, assigned={("sensors.camera", 0)})
    assert p.unassigned == 3 and not p.doubles and not p.positions


def test_garbage_is_applied_in_order_and_dead_lettered():
    first, second = messages(protests(2))
    garbage = Incoming("sensors.camera", 0, 1, b"c0000001", b"not avro")
    batch = [first, garbage, Incoming("sensors.camera", 0, 2, second.key, second.value)]
    p = plan(batch)
    assert [(d.index, d.reason) for d in p.dead_letters] == [(1, "not-single-object")]
    assert stands(p)[("sensors.camera", 0)] == (3, 2)


def test_a_blacklisting_is_decided_once():
    p = plan(messages(protests(7)))
    assert [(c, s["active"]) for c, s in p.sanctions] == [("c0000001", True)]
    assert p.sanctions[0][1]["double_version"] == 6


def test_a_redelivered_batch_sends_the_current_double_and_sanction_again():
    """A crash after the table write lost the sends: the events come back as duplicates."""
    events = protests(7)
    stored = fold_all(events)
    p = plan(messages(events), stored=stored)
    assert not p.doubles, "nothing is written again"
    ((double, _),) = p.republish.values()
    assert double is stored["c0000001"]
    ((citizen, sanction),) = p.sanctions
    assert citizen == "c0000001" and sanction["active"] and sanction["double_version"] == 7


def test_the_sanction_sent_again_is_the_current_one_not_an_old_one():
    """Blacklisted, then lifted: a re-delivery of the blacklisting sends the lift."""
    protest = protests(6)
    good = [ev("camera", behaviour="VOLUNTEERING", hours=10 + i) for i in range(10)]
    stored = fold_all([*protest, *good])
    p = plan(messages(protest), stored=stored)
    ((_, sanction),) = p.sanctions
    assert not sanction["active"] and sanction["double_version"] == 16


def test_new_events_after_a_duplicate_end_on_the_current_sanction():
    events = protests(7)
    stored = fold_all(events[:6])  # blacklisted at the sixth; its sanction was lost
    p = plan(messages(events), stored=stored)
    assert p.doubles["c0000001"][0]["version"] == 7 and not p.republish
    ((_, sanction),) = p.sanctions
    assert sanction["active"] and sanction["double_version"] == 7
