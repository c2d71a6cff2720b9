"""Decoding is bounded by the bytes: a declared count or length far beyond the message is
refused fast, without allocating (issue 23, finding 5, the single-object path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fastavro
import pytest

from processors.core.fold import Event, fold_all
from producers.city import generate_events
from schemas.codec import CAMERA, DOUBLE, Registry, encode, registry, unbounded_parts
from tests.factories import zigzag_varint

ROOT = Path(__file__).resolve().parents[2]
HUGE = 2**62


def test_every_schema_of_ours_decodes_within_its_bytes():
    assert len(registry.by_name) == 8
    for schema in registry.by_name.values():
        assert unbounded_parts(schema.parsed) == [], schema.name


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "array", "items": "null"}, ".x"),
        ({"type": "array", "items": {"type": "record", "name": "E", "fields": []}}, ".x"),
        (
            {
                "type": "map",
                "values": {"type": "array", "items": {"type": "fixed", "name": "F", "size": 0}},
            },
            ".x{}",
        ),
        (["null", "R"], ".x|1"),  # a recursive record
    ],
    ids=["nulls", "empty-records", "empty-fixed-in-map", "recursive"],
)
def test_a_schema_whose_decoding_is_unbounded_is_refused_at_load(tmp_path, schema, where):
    record = {"type": "record", "name": "R", "fields": [{"name": "x", "type": schema}]}
    (tmp_path / "r.avsc").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="not bounded by the bytes") as info:
        Registry(tmp_path)
    assert where in str(info.value)


def test_arrays_of_items_that_take_a_byte_are_bounded():
    record = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "a", "type": {"type": "array", "items": ["null", "string"]}},
            {
                "name": "b",
                "type": {"type": "array", "items": {"type": "enum", "name": "E", "symbols": ["X"]}},
            },
            {"name": "c", "type": {"type": "array", "items": {"type": "array", "items": "null"}}},
        ],
    }
    assert unbounded_parts(fastavro.parse_schema(record)) == [
        ".c[]: an array of items that may take no byte"
    ]


def huge_counts(value: bytes, start: int) -> list[bytes]:
    """``value`` with a huge count or length (2^62, and -2^62 followed by a huge block
    size) spliced in at every byte from ``start``: wherever a count, a length or a map
    size begins, the message declares far more than it holds."""
    out = []
    for i in range(start, len(value)):
        out.append(value[:i] + zigzag_varint(HUGE) + value[i + 1 :])
        out.append(value[:i] + zigzag_varint(-HUGE) + zigzag_varint(HUGE) + value[i + 1 :])
    return out


CHILD = """
import json, resource, sys, time, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from schemas.codec import CodecError, decode
reasons, slowest, peak = {}, 0.0, 0
for value in map(bytes.fromhex, json.load(sys.stdin)):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        decode(value)
        reason = "decoded"
    except CodecError as exc:  # invalid-body: by the exception fastavro raised
        reason = exc.reason.value
        if exc.reason.value == "invalid-body":
            reason += ":" + exc.detail.split(": ")[1]
    slowest = max(slowest, time.perf_counter() - started)
    peak = max(peak, tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    reasons[reason] = reasons.get(reason, 0) + 1
print(json.dumps({"reasons": reasons, "slowest": slowest, "traced_peak": peak}))
"""


def test_declared_counts_beyond_the_bytes_are_refused_fast_without_allocating():
    """Every collection, string and bytes field of a camera sighting and of a digital
    double (maps, the ledger, the marks), declared 2^62 long: each is refused in
    milliseconds, in a child process under a 1 GiB address-space limit."""
    camera = next(e for e in generate_events(3, 5, 200) if e.kind == "camera")
    sighting = encode(CAMERA, camera.record | {"companions": ["c1", "c2", "c3"]})
    doubles = fold_all(Event(e.kind, e.record) for e in generate_events(3, 5, 200))
    double = encode(DOUBLE, max(doubles.values(), key=lambda d: len(encode(DOUBLE, d))))
    values = huge_counts(sighting, 10) + huge_counts(double, 10)
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps([v.hex() for v in values]),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    reasons = result["reasons"]
    assert sum(reasons.values()) == len(values)
    assert reasons["truncated-body"] > 0
    assert not [r for r in reasons if "MemoryError" in r], reasons
    assert result["slowest"] < 2.0, result  # loose: the unbounded decode ran for minutes
    assert result["traced_peak"] < 1_000_000, result
