"""Registry mode trusts only moisson's schemas: a registry anyone can write to cannot make
the processor decode with a schema of its own (issue 23, finding 5)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import fastavro
import pytest

from processors.core.validation import Rejection, apply_message
from producers.city import generate_events
from schemas.codec import (
    METRO,
    SENSOR_SCHEMAS,
    CodecError,
    Reason,
    decode,
    encode_confluent,
    ours,
    schema_from_json,
)
from schemas.registry_client import MAX_ANSWER_BYTES, SchemaRegistryClient
from tests.factories import zigzag_varint
from tests.fake_registry import FakeRegistry, fake_registry

ROOT = Path(__file__).resolve().parents[2]
ARRAY_OF_NULLS = json.dumps({"type": "array", "items": "null"})


def attack(schema_id: int) -> bytes:
    """The 16-byte message of the issue: Confluent header, one block of 2^62 items, end."""
    value = b"\x00" + schema_id.to_bytes(4, "big") + zigzag_varint(2**62) + b"\x00"
    assert len(value) == 16
    return value


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with fake_registry() as registry:
        yield registry


def client_of(fake: FakeRegistry) -> SchemaRegistryClient:
    return SchemaRegistryClient(fake.url, timeout=2, attempts=1)


def metro_event():
    return next(e for e in generate_events(5, 20, 200) if e.kind == "metro")


def test_the_attack_is_real_fastavro_reads_any_declared_count_of_nulls():
    """Scaled down: 4 bytes declare 100,000 nulls and fastavro materialises them all."""
    body = zigzag_varint(100_000) + b"\x00"
    parsed = fastavro.parse_schema(json.loads(ARRAY_OF_NULLS))
    assert fastavro.schemaless_reader(io.BytesIO(body), parsed, None) == [None] * 100_000


def test_a_foreign_registry_schema_is_refused_without_decoding(fake):
    fake.serve(7, ARRAY_OF_NULLS)
    client = client_of(fake)
    with mock.patch("schemas.codec.fastavro.schemaless_reader") as reader:
        out = apply_message(
            None, expected_kind=None, topic="t", key=b"c", value=attack(7), resolver=client.resolve
        )
    assert reader.call_count == 0, "a foreign schema must never reach the decoder"
    assert out.rejected is Rejection.UNKNOWN_SCHEMA
    assert out.detail.startswith("unknown-schema: schema id 7")
    assert Rejection.UNKNOWN_SCHEMA.dead_letter


def test_the_16_byte_attack_is_refused_fast_in_bounded_memory(fake):
    """In a child process under a 1 GiB address-space limit, so that a regression fails
    this test instead of the machine."""
    fake.serve(7, ARRAY_OF_NULLS)
    script = """
import json, resource, sys, time, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from processors.core.validation import apply_message
from schemas.registry_client import SchemaRegistryClient
client = SchemaRegistryClient(sys.argv[1], timeout=2, attempts=1)
value = bytes.fromhex(sys.argv[2])
def peak_kb():
    # VmHWM belongs to this program's memory map; ru_maxrss survives exec, so a child
    # forked from a large pytest would report pytest's own peak.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
tracemalloc.start()
started = time.perf_counter()
out = apply_message(None, expected_kind=None, topic="t", key=b"c", value=value,
                    resolver=client.resolve)
print(json.dumps({"rejected": out.rejected and out.rejected.value,
                  "seconds": time.perf_counter() - started,
                  "traced_peak": tracemalloc.get_traced_memory()[1],
                  "max_rss_kb": peak_kb()}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, fake.url, attack(7).hex()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["rejected"] == "unknown-schema"
    assert result["seconds"] < 20  # it ran until killed; this is no speed figure
    assert result["traced_peak"] < 2_000_000
    assert result["max_rss_kb"] < 300_000
    assert fake.lookups[7] == 1


def test_a_resolver_that_returns_a_foreign_schema_is_refused_too():
    """The codec's own guard: whatever the resolver, only our schemas decode (here a
    record under our MetroPassage's name holding only the array of nulls)."""
    fields = [{"name": "junk", "type": json.loads(ARRAY_OF_NULLS)}]
    foreign = schema_from_json(json.dumps({"type": "record", "name": METRO.name, "fields": fields}))
    with (
        mock.patch("schemas.codec.fastavro.schemaless_reader") as reader,
        pytest.raises(CodecError) as info,
    ):
        decode(attack(7), resolver={7: foreign}.get)
    assert reader.call_count == 0
    assert info.value.reason is Reason.UNKNOWN_SCHEMA


def test_an_evolved_copy_of_one_of_ours_is_foreign(fake):
    """Same name, one more field: its canonical form is not ours, so it is refused."""
    raw = json.loads(METRO.text)
    raw["fields"].append({"name": "junk", "type": {"type": "array", "items": "null"}})
    fake.serve(8, json.dumps(raw))
    ev = metro_event()
    with pytest.raises(CodecError) as info:
        decode(encode_confluent(METRO, 8, ev.record), resolver=client_of(fake).resolve)
    assert info.value.reason is Reason.UNKNOWN_SCHEMA


def test_our_schema_is_recognised_by_its_canonical_form_whatever_its_text(fake):
    """Docs dropped, keys reordered, whitespace changed: still ours, decoded with ours."""
    raw = json.loads(METRO.text)
    raw.pop("doc", None)
    for field in raw["fields"]:
        field.pop("doc", None)
    text = json.dumps(dict(reversed(list(raw.items()))), indent=3)
    assert text != METRO.text
    fake.serve(9, text)
    ev = metro_event()
    writer, record = decode(encode_confluent(METRO, 9, ev.record), resolver=client_of(fake).resolve)
    assert writer is METRO
    assert record["citizen_id"] == ev.citizen_id


@pytest.mark.parametrize(
    "answer",
    [
        {"schema": "{not json"},
        {"schema": 42},
        {"schema": "[" * 50_000 + "]" * 50_000},  # deeper than the parser's recursion
        {"schema": METRO.text, "schemaType": "PROTOBUF"},
        {"schema": json.dumps({"type": "record", "name": "X", "fields": []})},
        {"schema": " " * MAX_ANSWER_BYTES + METRO.text},  # longer than any of ours
    ],
    ids=["not-json", "not-text", "deep", "protobuf", "other-record", "too-long"],
)
def test_anything_but_one_of_ours_is_unknown_schema_and_cached(fake, answer):
    fake.answers[11] = answer
    client = client_of(fake)
    for _ in range(2):
        with pytest.raises(CodecError) as info:
            client.resolve(11)
        assert info.value.reason is Reason.UNKNOWN_SCHEMA
    assert fake.lookups[11] == 1, "the verdict is cached"


def test_ours_accepts_exactly_our_canonical_forms():
    for schema in SENSOR_SCHEMAS.values():
        assert ours(schema.text) is schema
        assert ours(schema.canonical) is schema
    with pytest.raises(CodecError) as info:
        ours(ARRAY_OF_NULLS)
    assert info.value.reason is Reason.UNKNOWN_SCHEMA
