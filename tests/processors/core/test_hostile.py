"""Well-formed but hostile messages through the planner: each cap, each new reason, and
no message that can make ``plan_batch`` raise (README: Bad input, bounds and security)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.core.fold import fold_all
from processors.core.horizon import Horizon
from processors.core.planning import Folding, Incoming, Position, plan_batch
from processors.core.validation import Limits
from processors.worker import kafka_partition
from schemas.codec import SENSOR_SCHEMAS, CodecError, Reason, encode
from tests.factories import T0, ev

TOPIC = {k: f"sensors.{k}" for k in SENSOR_SCHEMAS}
KINDS = {t: k for k, t in TOPIC.items()}


def msgs(events, partition=0, start=0):
    return [
        Incoming(TOPIC[e.kind], partition, start + i, e.citizen_id.encode(), e_value(e))
        for i, e in enumerate(events)
    ]


def e_value(e):
    return encode(SENSOR_SCHEMAS[e.kind], e.record)


def run(batch, folding, stored=None, partitions=None, floors=None):
    stored = stored if stored is not None else {}
    return plan_batch(
        batch,
        lambda src: Position(),
        lambda c, _i: stored.get(c),
        folding,
        None,
        floors or (lambda p: None),
        partitions or (lambda t: None),
    )


def reasons(p):
    return [d.reason for d in p.dead_letters]


def test_a_new_key_past_the_cap_is_refused_and_known_keys_go_on():
    folding = Folding(kinds=KINDS, limits=Limits(max_keys=8))
    stations = [ev("metro", hours=i, station=f"S{i}") for i in range(8)]
    stored = fold_all(stations)
    p = run(
        msgs([ev("metro", hours=9, station="S9"), ev("metro", hours=10, station="S3")]),
        folding,
        stored,
    )
    assert reasons(p) == ["too-many-keys"]
    double = p.doubles["c0000001"][0]
    assert len(double["places"]) == 8 and double["places"]["S3"] == 2


def test_companions_count_against_the_associates_cap():
    folding = Folding(kinds=KINDS, limits=Limits(max_keys=8))
    crowd = [f"c{i:07d}" for i in range(100, 109)]
    p = run(msgs([ev("camera", companions=crowd)]), folding, {"c0000001": None})
    assert reasons(p) == []  # a citizen never seen starts empty: the cap is per stored map
    stored = {"c0000001": p.doubles["c0000001"][0]}
    p = run(msgs([ev("camera", hours=1, companions=["c0000999"])]), folding, stored)
    assert reasons(p) == ["too-many-keys"]


def test_a_long_key_is_refused_whatever_field_holds_it():
    folding = Folding(kinds=KINDS, limits=Limits(max_key_bytes=32))
    bad = [
        ev("metro", station="S" * 33),
        ev("camera", location="L" * 33),
        ev("camera", companions=["c" * 33]),
        ev("book", title="书" * 11),  # 33 bytes
        ev("metro", citizen="c" * 33),
    ]
    p = run([m for i, e in enumerate(bad) for m in msgs([e], partition=i)], folding)
    assert reasons(p) == ["key-too-long"] * 5 and not p.doubles


def test_a_burst_is_refused_within_its_window_and_the_citizen_goes_on_after_it():
    folding = Folding(kinds=KINDS, limits=Limits(max_burst_events=10))
    burst = [ev("metro", hours=i / 60) for i in range(12)]
    later = ev("metro", hours=24 * 8)  # past the 7-day window
    p = run(msgs([*burst, later]), folding)
    assert reasons(p) == ["citizen-burst", "citizen-burst"]
    assert p.doubles["c0000001"][0]["metro_count"] == 11
    assert p.positions[(TOPIC["metro"], 0)][0].next == 13  # the partition moved past them


def test_a_double_past_its_size_cap_is_not_written_and_its_events_are_dead_letters():
    folding = Folding(kinds=KINDS, limits=Limits(max_double_bytes=4096, max_key_bytes=2048))
    big = [ev("book", hours=i, title=f"{i}" + "长" * 600) for i in range(4)]
    other = ev("metro", citizen="c0000002")
    p = run([*msgs(big), *msgs([other], partition=1)], folding)
    assert reasons(p) == ["state-too-large"] * 4
    assert "limit 4096" in p.dead_letters[0].detail
    assert list(p.doubles) == ["c0000002"] and set(p.encoded) == {"c0000002"}
    assert all(c != "c0000001" for c, _, _ in p.ledger)
    assert p.positions[(TOPIC["book"], 0)][0].next == 4  # past all four


def test_every_written_double_fits_the_cap():
    folding = Folding(kinds=KINDS)
    p = run(msgs([ev("metro", hours=i) for i in range(50)]), folding)
    assert set(p.encoded) == set(p.doubles)
    assert all(len(v) <= Limits().max_double_bytes for v in p.encoded.values())


def test_an_event_on_another_partition_than_its_keys_is_refused():
    folding = Folding(kinds=KINDS, partitioner=kafka_partition)
    e = ev("metro", citizen="c0000042")
    home = kafka_partition(b"c0000042", 4)
    away = (home + 1) % 4
    p = run(msgs([e], partition=away), folding, partitions=lambda t: 4)
    assert reasons(p) == ["wrong-partition"] and not p.doubles
    assert f"belongs on partition {home}, not {away}" in p.dead_letters[0].detail
    p = run(msgs([e], partition=home), folding, partitions=lambda t: 4)
    assert reasons(p) == [] and "c0000042" in p.doubles
    p = run(msgs([e], partition=away), folding, partitions=lambda t: None)
    assert reasons(p) == [], "an unknown partition count checks nothing"


def test_an_old_event_for_a_checkpointed_double_never_raises():
    """Was ``ValueError: an entry before the checkpoint``: a crash/restart loop."""
    rules_horizon = Horizon(lateness=timedelta(days=1), window=timedelta(days=2))
    folding = Folding(kinds=KINDS, horizon=rules_horizon)
    recent = [ev("camera", behaviour="GATHERING", hours=24 * d) for d in (20, 30)]
    p = run(msgs(recent), folding, floors=lambda part: T0 + timedelta(days=31))
    stored = {"c0000001": p.doubles["c0000001"][0]}
    assert stored["c0000001"]["checkpoint"] is not None
    # Another partition's watermark lets it in; the checkpoint is well after it.
    old = ev("book", category="BANNED", hours=1)
    p = run(msgs([old], partition=3), folding, stored)
    assert reasons(p) == ["fold-error"]
    assert p.dead_letters[0].detail.startswith("ValueError: ")


def test_a_forged_stored_double_is_a_fold_error_not_a_crash():
    folding = Folding(kinds=KINDS)
    good = fold_all([ev("metro")])["c0000001"]
    at_max = {**good, "version": 2**63 - 1}
    p = run(msgs([ev("metro", hours=1)]), folding, {"c0000001": at_max})
    assert reasons(p) == ["fold-error"] and "c0000001" not in p.doubles
    broken = {k: v for k, v in good.items() if k != "places"}
    p = run(msgs([ev("metro", hours=1)]), folding, {"c0000001": broken})
    assert reasons(p) == ["fold-error"] and "KeyError" in p.dead_letters[0].detail


class Outage:
    """A registry resolver that cannot be reached."""

    def __call__(self, schema_id: int):
        raise CodecError(Reason.REGISTRY_UNAVAILABLE, "registry down")


def test_a_registry_outage_makes_the_partition_wait_and_loses_nothing():
    folding = Folding(kinds=KINDS, resolver=Outage())
    good = ev("metro", citizen="c0000002")
    framed = b"\x00" + (7).to_bytes(4, "big") + e_value(good)[10:]
    batch = [
        *msgs([good]),
        Incoming(TOPIC["metro"], 0, 1, b"c0000002", framed),
        *msgs([ev("metro", hours=1, citizen="c0000002")], start=2),
        *msgs([ev("book", citizen="c0000003")], partition=1),
    ]
    p = run(batch, folding)
    assert p.dead_letters == [] and p.waiting == {(TOPIC["metro"], 0): 1}
    assert p.positions[(TOPIC["metro"], 0)][0].next == 1  # stops before the framed one
    assert p.doubles["c0000002"][0]["metro_count"] == 1
    assert "c0000003" in p.doubles  # other partitions go on


# -- nothing a message holds makes the planner raise ---------------------------------

valid = st.sampled_from(
    [
        ev("metro"),
        ev("camera", behaviour="GATHERING", companions=["c0000002"]),
        ev("book", category="BANNED", hours=2),
        ev("payment", category="GAMING", hours=-8),
        ev("metro", citizen="c0000002", hours=500),
    ]
)


@st.composite
def hostile_message(draw, offsets):
    topic = draw(st.sampled_from([*TOPIC.values(), "elsewhere"]))
    partition = draw(st.integers(0, 5))
    e = draw(valid)
    value = draw(
        st.one_of(
            st.binary(max_size=80),
            st.just(e_value(e)),
            st.binary(max_size=40).map(lambda b: e_value(e)[:10] + b),
            st.none(),
        )
    )
    key = draw(st.one_of(st.just(e.citizen_id.encode()), st.binary(max_size=12), st.none()))
    src = (topic, partition)
    offsets[src] = offsets.get(src, 0) + draw(st.integers(0, 2))
    return Incoming(topic, partition, offsets[src], key, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_plan_batch_never_raises_on_arbitrary_bytes_keys_and_partitions(data, evicting):
    horizon = Horizon(lateness=timedelta(days=1), window=timedelta(days=2))
    folding = Folding(
        kinds=KINDS,
        partitioner=kafka_partition,
        horizon=horizon,
        limits=dataclasses.replace(Limits(), max_burst_events=4, max_keys=8),
    )
    stored: dict = {}
    for _ in range(3):  # a few batches, each on the state the last one wrote
        offsets: dict = {}
        batch = data.draw(st.lists(hostile_message(offsets), max_size=25))
        p = run(
            batch,
            folding,
            stored,
            partitions=lambda t: 6,
            floors=(lambda part: T0 + timedelta(days=20)) if evicting else None,
        )
        stored.update({c: d for c, (d, _) in p.doubles.items()})
        taken = {d.index for d in p.dead_letters}
        assert len(taken) == len(p.dead_letters), "one dead letter per message at most"
        assert set(p.encoded) == set(p.doubles)
