"""What the agent does per message: validate, deduplicate, fold."""

from __future__ import annotations

from processors.fold import Event, fold
from processors.harvest import Rejection, apply_message
from producers.city import generate_events
from schemas.codec import DOUBLE, encode


def first(kind="metro"):
    return next(e for e in generate_events(8, 20, 200) if e.kind == kind)


def apply(current, ev, *, key=None, offset=5, kind=None, value=None):
    return apply_message(
        current,
        expected_kind=kind or ev.kind,
        topic=f"sensors.{ev.kind}",
        partition=2,
        offset=offset,
        key=key if key is not None else ev.citizen_id.encode(),
        value=value if value is not None else ev.encode(),
    )


def test_a_good_message_is_folded_and_its_offset_remembered():
    ev = first()
    out = apply(None, ev)
    assert out.rejected is None
    expected = fold(None, Event(ev.kind, ev.record))
    assert {k: v for k, v in out.double.items() if k != "source_offsets"} == {
        k: v for k, v in expected.items() if k != "source_offsets"
    }
    assert out.double["source_offsets"] == {f"sensors.{ev.kind}/2": 5}


def test_a_redelivered_message_is_not_applied_twice():
    ev = first()
    once = apply(None, ev, offset=5).double
    again = apply(once, ev, offset=5)
    assert again.rejected is Rejection.DUPLICATE
    older = apply(once, ev, offset=4)
    assert older.rejected is Rejection.DUPLICATE
    assert apply(once, ev, offset=6).double["version"] == 2


def test_garbage_is_rejected_not_raised():
    ev = first()
    for junk in (b"", b"garbage", b"\xc3\x01" + b"\xff" * 8, ev.encode()[:-3]):
        assert apply(None, ev, value=junk).rejected is Rejection.UNDECODABLE


def test_key_must_match_citizen():
    ev = first()
    assert apply(None, ev, key=b"c9999999").rejected is Rejection.KEY_MISMATCH


def test_event_on_the_wrong_topic_is_rejected():
    ev = first("book")
    assert apply(None, ev, kind="metro").rejected is Rejection.WRONG_TOPIC


def test_a_double_on_a_sensor_topic_is_rejected():
    ev = first()
    double = fold(None, Event(ev.kind, ev.record))
    out = apply(None, ev, value=encode(DOUBLE, double))
    assert out.rejected is Rejection.NOT_A_SENSOR_EVENT
