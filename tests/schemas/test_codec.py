"""The single-object codec: round trips, the header, and every kind of bad bytes."""

from __future__ import annotations

import struct

import pytest
from fastavro.schema import fingerprint

from processors.core.fold import Event, fold, new_double
from producers.city import SENSORS, generate_events
from schemas.codec import (
    DOUBLE,
    MAGIC,
    SANCTION,
    SENSOR_SCHEMAS,
    CodecError,
    Reason,
    decode,
    encode,
    registry,
)


def sample_events():
    """One event of each kind, in the order metro, payment, book, camera."""
    seen = {}
    for ev in generate_events(3, 50, 400):
        seen.setdefault(ev.kind, ev)
    assert set(seen) == set(SENSORS)
    return [seen[k] for k in SENSORS]


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.kind)
def test_sensor_events_round_trip(event):
    schema, record = decode(event.encode())
    assert schema is SENSOR_SCHEMAS[event.kind]
    assert {**record, "event_id": str(record["event_id"])} == event.record


def test_double_round_trip():
    from processors.core.fold import fold_all
    from tests.factories import ev

    events = [ev("camera", behaviour="GATHERING", hours=i, companions=["c2"]) for i in range(6)]
    events.append(ev("book", category="BANNED", hours=7))
    double = fold_all(events)["c0000001"]
    assert double["ledger"] and double["marks"] and double["blacklist"]
    assert decode(encode(DOUBLE, double))[1] == double
    plain = fold(
        new_double("c1"), Event("metro", {**sample_events()[0].record, "citizen_id": "c1"})
    )
    assert decode(encode(DOUBLE, plain))[1] == plain


def test_sanction_round_trip():
    ev = sample_events()[0]
    sanction = {
        "sanction_id": "8d7f4b0e-1f43-4d0a-9a57-3c1f2f3c1d11",
        "citizen_id": "c0000001",
        "kind": "METRO_GATE_CLOSED",
        "active": True,
        "score": 340,
        "threshold": 350,
        "reason": "score under 350",
        "issued_at": ev.record["occurred_at"],
        "double_version": 9,
    }
    _, back = decode(encode(SANCTION, sanction))
    assert {**back, "sanction_id": str(back["sanction_id"])} == sanction


def test_header_is_magic_plus_little_endian_crc64_fingerprint():
    data = sample_events()[0].encode()
    schema = SENSOR_SCHEMAS["metro"]
    assert data[:2] == b"\xc3\x01" == MAGIC
    assert data[2:10] == bytes.fromhex(fingerprint(schema.canonical, "CRC-64-AVRO"))


def test_fingerprint_matches_the_avro_spec_reference_value():
    # The Java reference implementation gives 7195948357588979594 for the schema "null".
    fp = bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO"))
    assert struct.unpack("<q", fp)[0] == 7195948357588979594


def test_every_schema_file_loads_with_a_namespace():
    assert len(registry.by_name) == 8
    assert all(name.startswith("org.moisson.") for name in registry.by_name)
    assert len(registry.by_fingerprint) == 8


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.NOT_SINGLE_OBJECT),
        (b"hello world, not avro", Reason.NOT_SINGLE_OBJECT),
        (b'{"citizen_id": "c1"}', Reason.NOT_SINGLE_OBJECT),
        (b"\xc3\x01\x00", Reason.NOT_SINGLE_OBJECT),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", Reason.UNKNOWN_FINGERPRINT),
    ],
)
def test_bad_bytes_give_one_clear_error(data, reason):
    with pytest.raises(CodecError) as info:
        decode(data)
    assert info.value.reason is reason
    assert reason.value in str(info.value)


def test_every_truncation_is_a_clear_error():
    data = sample_events()[2].encode()
    for cut in range(len(data)):
        with pytest.raises(CodecError) as info:
            decode(data[:cut])
        if cut > 10:
            assert info.value.reason in (Reason.TRUNCATED, Reason.INVALID_BODY), cut


def test_trailing_bytes_are_rejected():
    data = sample_events()[0].encode()
    with pytest.raises(CodecError) as info:
        decode(data + b"\x00\x00")
    assert info.value.reason is Reason.TRAILING_BYTES


def test_non_bytes_are_rejected():
    with pytest.raises(CodecError):
        decode("a string")  # type: ignore[arg-type]


def test_encoding_an_invalid_record_is_a_codec_error():
    with pytest.raises(CodecError) as info:
        encode(SENSOR_SCHEMAS["payment"], {"citizen_id": "c1"})
    assert info.value.reason is Reason.INVALID_BODY


def test_reader_schema_resolution():
    data = sample_events()[0].encode()
    writer, record = decode(data, SENSOR_SCHEMAS["metro"])
    assert writer is SENSOR_SCHEMAS["metro"]
    assert record["citizen_id"].startswith("c")


def test_a_reader_schema_that_does_not_match_is_a_codec_error():
    with pytest.raises(CodecError) as info:
        decode(sample_events()[0].encode(), SENSOR_SCHEMAS["payment"])
    assert info.value.reason is Reason.INVALID_BODY
    assert len(str(info.value)) < 400
