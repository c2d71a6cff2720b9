"""The Confluent framing (schema registry mode): round trips, mixed topics, unknown ids."""

from __future__ import annotations

import functools
import json

import pytest

from moisson.stack import free_port
from processors.core.validation import Rejection, apply_message
from producers.city import generate_events
from schemas.codec import (
    CONFLUENT_HEADER_LEN,
    METRO,
    SENSOR_SCHEMAS,
    CodecError,
    IdResolver,
    Reason,
    Schema,
    decode,
    encode,
    encode_confluent,
    schema_from_json,
    schema_id_of,
)
from schemas.registry_client import RegistryError, SchemaRegistryClient, subject_for

#: A fake registry: ids 1-4 are our sensor schemas, in the order of SENSOR_SCHEMAS.
IDS = {i: s for i, s in enumerate(SENSOR_SCHEMAS.values(), start=1)}
ID_OF = {s.name: i for i, s in IDS.items()}


@pytest.fixture
def known() -> dict[int, Schema]:
    """An in-memory registry over a copy of IDS; the test may add ids to it."""
    return dict(IDS)


@pytest.fixture
def resolver(known: dict[int, Schema]) -> IdResolver:
    """The resolver passed to decode: looks ids up in ``known``."""
    return known.get


@functools.cache
def events() -> tuple:
    return tuple(generate_events(7, 50, 400))


def confluent(ev) -> bytes:
    schema = SENSOR_SCHEMAS[ev.kind]
    return encode_confluent(schema, ID_OF[schema.name], ev.record)


def test_confluent_header_is_magic_zero_and_big_endian_id():
    data = encode_confluent(METRO, 0x01020304, events()[0].record | {"citizen_id": "c1"})
    assert data[:CONFLUENT_HEADER_LEN] == b"\x00\x01\x02\x03\x04"
    assert schema_id_of(data) == 0x01020304
    assert schema_id_of(encode(METRO, events()[0].record)) is None


def test_confluent_body_is_the_same_avro_binary_as_single_object():
    ev = events()[0]
    single, conf = ev.encode(), confluent(ev)
    assert single[10:] == conf[CONFLUENT_HEADER_LEN:]


def test_every_sensor_kind_round_trips_in_confluent_framing(resolver):
    seen = set()
    for ev in events():
        schema, record = decode(confluent(ev), resolver=resolver)
        assert schema is SENSOR_SCHEMAS[ev.kind]
        assert {**record, "event_id": str(record["event_id"])} == ev.record
        seen.add(ev.kind)
    assert seen == set(SENSOR_SCHEMAS)


def test_both_framings_decode_to_the_same_records(resolver):
    evs = events()
    mixed = [confluent(ev) if i % 2 else ev.encode() for i, ev in enumerate(evs)]
    assert {schema_id_of(m) is None for m in mixed} == {True, False}
    decoded = [decode(m, resolver=resolver)[1] for m in mixed]
    assert decoded == [decode(ev.encode())[1] for ev in evs]


def test_an_unknown_schema_id_is_a_codec_error(resolver):
    with pytest.raises(CodecError) as info:
        decode(encode_confluent(METRO, 4242, events()[0].record), resolver=resolver)
    assert info.value.reason is Reason.UNKNOWN_SCHEMA_ID
    assert "4242" in str(info.value)


def test_without_a_resolver_a_schema_id_is_a_codec_error():
    ev = events()[0]
    with pytest.raises(CodecError) as info:
        decode(confluent(ev))
    assert info.value.reason is Reason.UNKNOWN_SCHEMA_ID
    assert "no schema registry is configured" in str(info.value)
    assert decode(ev.encode())[1]["citizen_id"] == ev.citizen_id  # single objects still work


def test_a_failing_resolver_is_reported_not_raised():
    def broken(schema_id: int) -> Schema | None:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(CodecError) as info:
        decode(confluent(events()[0]), resolver=broken)
    assert info.value.reason is Reason.REGISTRY_UNAVAILABLE
    assert "nobody home" in str(info.value)


@pytest.mark.parametrize("cut", [1, 4, 5, 9])
def test_truncated_confluent_frames_are_clear_errors(resolver, cut):
    with pytest.raises(CodecError) as info:
        decode(confluent(events()[0])[:cut], resolver=resolver)
    if cut < CONFLUENT_HEADER_LEN:
        assert info.value.reason is Reason.NOT_SINGLE_OBJECT
    else:
        assert info.value.reason in (Reason.TRUNCATED, Reason.INVALID_BODY)


def test_trailing_bytes_after_a_confluent_body_are_rejected(resolver):
    with pytest.raises(CodecError) as info:
        decode(confluent(events()[0]) + b"\x00", resolver=resolver)
    assert info.value.reason is Reason.TRAILING_BYTES


def test_a_newer_registry_schema_is_refused_not_read_into_ours(known, resolver):
    """A producer with an evolved MetroPassage (an extra field) registered as id 99: not
    one of our schemas, so its records are refused as unknown-schema, not decoded (a
    registry anyone can write to must not choose how the processor decodes)."""
    raw = json.loads(METRO.text)
    raw["fields"].append({"name": "carriage", "type": "int", "default": 0})
    newer = schema_from_json(json.dumps(raw))
    assert newer.fingerprint != METRO.fingerprint
    known[99] = newer
    ev = next(e for e in events() if e.kind == "metro")
    with pytest.raises(CodecError) as info:
        decode(encode_confluent(newer, 99, ev.record | {"carriage": 3}), resolver=resolver)
    assert info.value.reason is Reason.UNKNOWN_SCHEMA
    assert "99" in info.value.detail


def test_the_processor_rejects_an_unknown_id_with_its_reason(resolver):
    ev = events()[0]
    data = encode_confluent(SENSOR_SCHEMAS[ev.kind], 777, ev.record)
    out = apply_message(
        None,
        expected_kind=ev.kind,
        topic="t",
        key=ev.citizen_id.encode(),
        value=data,
        resolver=resolver,
    )
    assert out.rejected is Rejection.UNKNOWN_SCHEMA_ID
    assert out.detail.startswith(Reason.UNKNOWN_SCHEMA_ID.value)


def test_the_processor_applies_confluent_framed_events(resolver):
    ev = events()[0]
    out = apply_message(
        None,
        expected_kind=ev.kind,
        topic="t",
        key=ev.citizen_id.encode(),
        value=confluent(ev),
        resolver=resolver,
    )
    assert out.double is not None
    assert out.double["citizen_id"] == ev.citizen_id


def test_an_unreachable_registry_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    client = SchemaRegistryClient(url, timeout=2, attempts=1)
    with pytest.raises(RegistryError, match=r"unreachable.*REGISTRY_URL"):
        client.register(subject_for("sensors.metro"), METRO)
    with pytest.raises(CodecError) as info:
        client.resolve(1)
    assert info.value.reason is Reason.REGISTRY_UNAVAILABLE
    assert url in str(info.value)


def test_subjects_follow_the_topic_name_strategy():
    assert subject_for("t-1.sensors.metro") == "t-1.sensors.metro-value"
