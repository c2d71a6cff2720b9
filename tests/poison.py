"""The poison-message corpus: every kind of bad sensor message, generated from good ones.

Each entry says which sensor topic it is sent to, its key and bytes, and the dead-letter
reason the processor must give it (None for fuzzed bytes, whose reason is whatever the
codec finds first, as long as it is a dead-letter reason). Used by the unit tests
(straight through ``apply_message``) and by the pipeline test (through the real worker).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from processors.core.fold import Event, fold_all
from processors.core.validation import Rejection
from producers.city import SensorEvent, generate_events
from schemas.codec import DOUBLE, SENSOR_SCHEMAS, encode


@dataclass(frozen=True)
class Poison:
    label: str
    kind: str  # the sensor topic it is sent to
    key: bytes | None
    value: bytes
    reason: Rejection | None


def samples(seed: int = 3) -> dict[str, SensorEvent]:
    """One good event of each sensor kind."""
    out: dict[str, SensorEvent] = {}
    for e in generate_events(seed, 30, 2000):
        out.setdefault(e.kind, e)
        if len(out) == len(SENSOR_SCHEMAS):
            return out
    raise AssertionError("the city produced fewer than four kinds of events")


def _mutant(e: SensorEvent, label: str, reason: Rejection, **changes: Any) -> Poison:
    record = {**e.record, **changes}
    key = str(record["citizen_id"]).encode()
    return Poison(label, e.kind, key, encode(SENSOR_SCHEMAS[e.kind], record), reason)


def corpus(fuzz: int = 24, seed: int = 7, max_bytes: int = 65536) -> list[Poison]:
    """Every kind the dead-letter topic knows, plus ``fuzz`` seeded random messages."""
    s = samples()
    metro, pay, book, cam = s["metro"], s["payment"], s["book"], s["camera"]
    good = metro.encode()
    mk = metro.citizen_id.encode()
    double = {**fold_all([Event(metro.kind, metro.record)])[metro.citizen_id]}
    out = [
        Poison("not avro", "metro", mk, b"not avro at all", Rejection.NOT_SINGLE_OBJECT),
        Poison("empty", "payment", mk, b"", Rejection.NOT_SINGLE_OBJECT),
        Poison(
            "unknown fingerprint",
            "metro",
            mk,
            b"\xc3\x01" + b"\x00" * 8 + good[10:],
            Rejection.UNKNOWN_FINGERPRINT,
        ),
        Poison("truncated", "metro", mk, good[:-5], Rejection.TRUNCATED),
        Poison(
            "registry framing, an id no registry gave",
            "metro",
            mk,
            b"\x00" + (987654).to_bytes(4, "big") + good[10:],
            Rejection.UNKNOWN_SCHEMA_ID,
        ),
        Poison("trailing bytes", "metro", mk, good + b"\x00\x01", Rejection.TRAILING_BYTES),
        Poison(
            "enum index out of range",
            "metro",
            mk,
            good[:10] + _invalid_enum_body(metro),
            Rejection.INVALID_BODY,
        ),
        Poison(
            "a double on a sensor topic",
            "camera",
            mk,
            encode(DOUBLE, double),
            Rejection.NOT_A_SENSOR_EVENT,
        ),
        Poison(
            "a book on the metro topic",
            "metro",
            book.citizen_id.encode(),
            book.encode(),
            Rejection.WRONG_TOPIC,
        ),
        Poison("key is someone else", "metro", b"someone-else", good, Rejection.KEY_MISMATCH),
        Poison("no key", "metro", None, good, Rejection.KEY_MISMATCH),
        _mutant(metro, "empty citizen", Rejection.MISSING_CITIZEN, citizen_id=""),
        _mutant(pay, "blank citizen", Rejection.MISSING_CITIZEN, citizen_id="   "),
        _mutant(
            cam,
            "before 1970",
            Rejection.PRE_EPOCH,
            occurred_at=datetime(1969, 7, 20, 20, 17, tzinfo=UTC),
        ),
        _mutant(book, "year 2200", Rejection.FUTURE, occurred_at=datetime(2200, 1, 1, tzinfo=UTC)),
        _mutant(pay, "negative payment", Rejection.NEGATIVE_AMOUNT, amount_cents=-100),
        _mutant(metro, "negative fare", Rejection.NEGATIVE_AMOUNT, fare_cents=-1),
        _mutant(book, "negative price", Rejection.NEGATIVE_AMOUNT, price_cents=-3000),
        _mutant(cam, "confidence NaN", Rejection.OUT_OF_RANGE, confidence=float("nan")),
        _mutant(cam, "confidence 7", Rejection.OUT_OF_RANGE, confidence=7.0),
        _mutant(book, "NUL in a title", Rejection.NUL_CHARACTER, title="Les\x00Misérables"),
        _mutant(cam, "NUL in a companion", Rejection.NUL_CHARACTER, companions=["c\x001"]),
        _mutant(book, "over the size limit", Rejection.OVERSIZE, title="长" * (max_bytes // 2)),
        _mutant(book, "a 3 KB title", Rejection.KEY_TOO_LONG, title="书" * 1024),
        _mutant(metro, "a 3 KB citizen id", Rejection.KEY_TOO_LONG, citizen_id="c" * 3000),
        _mutant(cam, "a long companion", Rejection.KEY_TOO_LONG, companions=["c" * 300]),
    ]
    rng = random.Random(seed)
    for i in range(fuzz):
        if i % 2:
            value = rng.randbytes(rng.randrange(0, 300))
        else:  # a real header, a random body: the codec's deeper checks
            e = s[rng.choice(list(s))]
            value = e.encode()[:10] + rng.randbytes(rng.randrange(0, 120))
        out.append(Poison(f"fuzz {i}", rng.choice(list(s)), mk, value, None))
    return out


def _invalid_enum_body(e: SensorEvent) -> bytes:
    """The metro body with its ``direction`` enum index set to 99 (zig-zag 198)."""
    body = e.encode()[10:]
    # The enum's byte is the one that differs from the same record with the other direction.
    other = "EXIT" if e.record["direction"] == "ENTRY" else "ENTRY"
    alt = encode(SENSOR_SCHEMAS[e.kind], {**e.record, "direction": other})[10:]
    at = next(i for i, (a, b) in enumerate(zip(body, alt, strict=True)) if a != b)
    return body[:at] + bytes([198, 1]) + body[at + 1 :]
