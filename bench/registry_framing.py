"""Benchmark: what the Confluent (registry) framing costs against single-object framing.

Both framings carry the same Avro body; they differ in the header and in how the
writer schema is found (a fingerprint dict lookup, or the id resolver: here the
real :class:`SchemaRegistryClient` with its cache already filled, as in a worker
that has seen each id once). The raw baseline is fastavro's schemaless writer and
reader on the same records. Not a test: numbers depend on the machine.

    .venv/bin/python -m bench.registry_framing [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import fastavro

from producers.city import generate_events
from schemas.codec import SENSOR_SCHEMAS, decode, encode, encode_confluent
from schemas.registry_client import SchemaRegistryClient


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()  # CPU time: steadier than wall time on a shared machine
        fn()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    events = [(SENSOR_SCHEMAS[e.kind], e.record) for e in generate_events(1, 500, args.events)]
    ids = {s.name: i for i, s in enumerate(SENSOR_SCHEMAS.values(), start=1)}
    # A client whose cache is filled: no HTTP happens in the timed loops.
    client = SchemaRegistryClient("http://127.0.0.1:9/unused")
    for schema in SENSOR_SCHEMAS.values():
        client.remember(ids[schema.name], schema)
    resolve = client.resolve

    bodies = []
    for schema, record in events:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema.parsed, record)
        bodies.append((schema, buf.getvalue()))
    single = [encode(s, r) for s, r in events]
    confluent = [encode_confluent(s, ids[s.name], r) for s, r in events]

    def raw_encode() -> None:
        for schema, record in events:
            fastavro.schemaless_writer(io.BytesIO(), schema.parsed, record)

    def raw_decode() -> None:
        for schema, body in bodies:
            fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)

    variants = {
        "raw_encode": raw_encode,
        "single_encode": lambda: [encode(s, r) for s, r in events],
        "confluent_encode": lambda: [encode_confluent(s, ids[s.name], r) for s, r in events],
        "raw_decode": raw_decode,
        "single_decode": lambda: [decode(d) for d in single],
        "confluent_decode": lambda: [decode(d, resolver=resolve) for d in confluent],
    }
    # Interleaved rounds, best of each: a busy machine slows every variant alike.
    t = dict.fromkeys(variants, float("inf"))
    for _ in range(args.repeat):
        for name, fn in variants.items():
            t[name] = min(t[name], best_of(1, fn))
    n = len(events)
    result = {
        "id": "registry_framing",
        "unit": "messages/s",
        "events": n,
        **{k: round(n / v) for k, v in t.items()},
        "encode_ratio_confluent_vs_single": round(t["single_encode"] / t["confluent_encode"], 4),
        "decode_ratio_confluent_vs_single": round(t["single_decode"] / t["confluent_decode"], 4),
        "encode_ratio_single_vs_raw": round(t["raw_encode"] / t["single_encode"], 4),
        "decode_ratio_single_vs_raw": round(t["raw_decode"] / t["single_decode"], 4),
        "bytes_single": sum(map(len, single)),
        "bytes_confluent": sum(map(len, confluent)),
        "note": "raw: fastavro schemaless writer/reader; ratio > 1 means faster than the other",
    }
    out = Path(__file__).parent / "results" / "registry_framing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
