"""What the agent does per message: validate, fold, deduplicate, decide sanctions."""

from __future__ import annotations

from processors.core.fold import Event, fold, fold_all
from processors.core.validation import Rejection, apply_message, sanction_for
from producers.city import generate_events
from schemas.codec import DOUBLE, SANCTION, decode, encode
from tests.factories import ev


def first(kind="metro"):
    return next(e for e in generate_events(8, 20, 200) if e.kind == kind)


def apply(current, e, *, key=None, kind=None, value=None):
    return apply_message(
        current,
        expected_kind=kind or e.kind,
        topic=f"sensors.{e.kind}",
        key=key if key is not None else e.citizen_id.encode(),
        value=value if value is not None else e.encode(),
    )


def test_a_good_message_is_folded():
    e = first()
    out = apply(None, e)
    assert out.rejected is None
    assert out.double == fold(None, Event(e.kind, e.record))


def test_a_redelivered_message_is_not_applied_twice():
    e = first()
    once = apply(None, e).double
    again = apply(once, e)
    assert again.rejected is Rejection.DUPLICATE and again.double is None


def test_garbage_is_rejected_not_raised():
    e = first()
    for junk, reason in (
        (b"", Rejection.NOT_SINGLE_OBJECT),
        (b"garbage", Rejection.NOT_SINGLE_OBJECT),
        (b"\xc3\x01" + b"\xff" * 8, Rejection.UNKNOWN_FINGERPRINT),
        (e.encode()[:-3], Rejection.TRUNCATED),
    ):
        assert apply(None, e, value=junk).rejected is reason


def test_key_must_match_citizen():
    assert apply(None, first(), key=b"c9999999").rejected is Rejection.KEY_MISMATCH


def test_event_on_the_wrong_topic_is_rejected():
    assert apply(None, first("book"), kind="metro").rejected is Rejection.WRONG_TOPIC


def test_a_double_on_a_sensor_topic_is_rejected():
    e = first()
    out = apply(None, e, value=encode(DOUBLE, fold(None, Event(e.kind, e.record))))
    assert out.rejected is Rejection.NOT_A_SENSOR_EVENT


def test_sanctions_on_entering_and_leaving_the_blacklist():
    protests = [ev("camera", behaviour="GATHERING", hours=i) for i in range(6)]
    before = fold_all(protests[:5])["c0000001"]
    after = fold(before, protests[5])
    s = sanction_for(before, after)
    assert s is not None and s["active"] and s["score"] == 300 and s["threshold"] == 350
    assert s["issued_at"] == protests[5].record["occurred_at"]
    assert decode(encode(SANCTION, s))[1]["citizen_id"] == "c0000001"
    assert sanction_for(after, after) is None, "no change, no sanction"
    assert sanction_for(None, before) is None
    lifted = after
    for i in range(10):
        lifted = fold(lifted, ev("camera", behaviour="VOLUNTEERING", hours=10 + i))
    s2 = sanction_for(after, lifted)
    assert s2 is not None and not s2["active"] and s2["threshold"] == 400
    assert s2["sanction_id"] != s["sanction_id"]
    # Deciding again gives the same id: sanctions are idempotent.
    assert sanction_for(before, after)["sanction_id"] == s["sanction_id"]
