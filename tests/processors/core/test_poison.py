"""The poison corpus through the per-message logic: every bad message gets its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.fold import Event, fold
from processors.core.validation import Limits, Rejection, apply_message
from schemas.codec import SENSOR_SCHEMAS, encode
from tests.poison import corpus, samples

TOPIC_OF = {k: f"sensors.{k}" for k in SENSOR_SCHEMAS}


def verdict(kind: str, key: bytes | None, value: bytes):
    return apply_message(None, expected_kind=kind, topic=TOPIC_OF[kind], key=key, value=value)


def test_every_poison_gets_its_reason():
    seen = set()
    for p in corpus():
        out = verdict(p.kind, p.key, p.value)
        assert out.double is None, p.label
        assert out.rejected is not None and out.rejected.dead_letter, (p.label, out)
        if p.reason is not None:
            assert out.rejected is p.reason, (p.label, out.rejected, out.detail)
            seen.add(p.reason)
    # Not bytes-borne: a registry outage (tests/schemas/test_codec_registry.py), a
    # registry schema that is none of ours (tests/schemas/test_registry_client_trust.py) and the
    # fallback for a codec reason the processor does not know yet; offsets a partition
    # never delivered (tests/processors/core/test_progress.py, the agent's give-up); events too
    # late for their partition's watermark (tests/processors/test_lateness_live.py); the
    # caps on what one double holds, a wrong partition and a fold that raises, which
    # need a stored double or the planner (tests/processors/core/test_hostile.py).
    elsewhere = {
        Rejection.TOO_MANY_KEYS,
        Rejection.CITIZEN_BURST,
        Rejection.STATE_TOO_LARGE,
        Rejection.WRONG_PARTITION,
        Rejection.FOLD_ERROR,
        Rejection.REGISTRY_UNAVAILABLE,
        Rejection.UNKNOWN_SCHEMA,
        Rejection.UNDECODABLE,
        Rejection.OFFSETS_MISSING,
        Rejection.TOO_LATE,
    }
    dead_letter_reasons = {r for r in Rejection if r.dead_letter} - elsewhere
    assert seen == dead_letter_reasons, "the corpus must cover every dead-letter reason"


def test_the_good_samples_are_applied():
    for e in samples().values():
        out = verdict(e.kind, e.citizen_id.encode(), e.encode())
        assert out.double == fold(None, Event(e.kind, e.record))


def test_a_small_clock_skew_is_tolerated_a_large_one_is_not():
    e = samples()["book"]
    soon = datetime.now(UTC) + timedelta(hours=1)
    value = encode(SENSOR_SCHEMAS["book"], {**e.record, "occurred_at": soon})
    assert verdict("book", e.citizen_id.encode(), value).rejected is None
    strict = Limits(max_future_s=60)
    out = apply_message(
        None,
        expected_kind="book",
        topic="b",
        key=e.citizen_id.encode(),
        value=value,
        limits=strict,
    )
    assert out.rejected is Rejection.FUTURE


def test_the_size_limit_is_a_setting():
    e = samples()["metro"]
    out = apply_message(
        None,
        expected_kind="metro",
        topic="m",
        key=e.citizen_id.encode(),
        value=e.encode(),
        limits=Limits(max_message_bytes=64),
    )
    assert out.rejected is Rejection.OVERSIZE and "limit 64" in out.detail


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(sorted(SENSOR_SCHEMAS)))
def test_fuzzed_bytes_never_raise_and_always_have_a_reason(value, kind):
    out = verdict(kind, b"c0000001", value)
    assert out.double is None and out.rejected is not None and out.rejected.dead_letter


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.sampled_from(sorted(SENSOR_SCHEMAS)))
def test_fuzzed_bodies_behind_a_real_header_never_raise(body, kind):
    e = samples()[kind]
    out = verdict(kind, e.citizen_id.encode(), e.encode()[:10] + body)
    if out.double is None:
        assert out.rejected is not None and out.rejected.dead_letter
    else:  # random bytes that happen to be a valid event are applied like any other
        assert out.double["citizen_id"] == e.citizen_id


hostile_text = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=300,
).filter(lambda s: len(s.encode()) <= 256)  # within PROCESSOR_MAX_KEY_BYTES (a title is a key)


@settings(max_examples=150, deadline=None)
@given(title=hostile_text, location=hostile_text)
def test_any_unicode_but_nul_is_kept_faithfully(title, location):
    """CJK, right-to-left, emoji, control characters: the double keeps them verbatim."""
    book, cam = samples()["book"], samples()["camera"]
    d = None
    for e, change in ((book, {"title": title}), (cam, {"location": location})):
        value = encode(SENSOR_SCHEMAS[e.kind], {**e.record, **change, "citizen_id": "c0000001"})
        out = apply_message(d, expected_kind=e.kind, topic="t", key=b"c0000001", value=value)
        assert out.rejected is None, out.detail
        d = out.double
    assert d is not None and title in d["books"] and location in d["places"]
