"""One sensor message in, one updated double (or a clear rejection) out.

This is what the faust agent does per message, kept free of faust so it can be
tested and reused directly: decode, validate, deduplicate, then the pure fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from processors.fold import Double, Event, fold
from processors.scoring import Rulebook
from schemas.codec import SENSOR_SCHEMAS, CodecError, decode

KIND_BY_SCHEMA = {schema.name: kind for kind, schema in SENSOR_SCHEMAS.items()}


class Rejection(StrEnum):
    """Why a message was not applied."""

    UNDECODABLE = "undecodable"
    NOT_A_SENSOR_EVENT = "not-a-sensor-event"
    WRONG_TOPIC = "wrong-topic"
    KEY_MISMATCH = "key-mismatch"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The new double, or why there is none."""

    double: Double | None = None
    citizen_id: str | None = None
    rejected: Rejection | None = None
    detail: str = ""


def offset_key(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


def apply_message(
    current: Double | None,
    *,
    expected_kind: str | None,
    partition: int,
    offset: int,
    topic: str,
    key: bytes | None,
    value: bytes,
    rules: Rulebook | None = None,
) -> Outcome:
    """Merge one sensor message into ``current`` (the double stored under its key).

    ``expected_kind`` is the kind the topic carries; None accepts any sensor kind.
    """
    try:
        schema, record = decode(value)
    except CodecError as exc:
        return Outcome(rejected=Rejection.UNDECODABLE, detail=str(exc))
    kind = KIND_BY_SCHEMA.get(schema.name)
    if kind is None:
        return Outcome(rejected=Rejection.NOT_A_SENSOR_EVENT, detail=schema.name)
    if expected_kind is not None and kind != expected_kind:
        return Outcome(rejected=Rejection.WRONG_TOPIC, detail=f"a {kind} event on {topic}")
    cid = str(record["citizen_id"])
    if key is None or key.decode("utf-8", "replace") != cid:
        return Outcome(
            rejected=Rejection.KEY_MISMATCH, detail=f"key {key!r} but citizen_id {cid!r}"
        )
    where = offset_key(topic, partition)
    if current is not None and current["source_offsets"].get(where, -1) >= offset:
        return Outcome(citizen_id=cid, rejected=Rejection.DUPLICATE, detail=f"{where}@{offset}")
    new = fold(current, Event(kind, record), rules)
    new["source_offsets"] = {**new["source_offsets"], where: offset}
    return Outcome(double=new, citizen_id=cid)
