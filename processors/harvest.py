"""One sensor message in, one updated double (or a clear rejection) out.

This is what the faust agent does per message, kept free of faust so it can be
tested and reused directly: decode, validate, fold, and decide on sanctions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from processors.fold import Double, Event, default_rules, fold
from processors.privacy import Privacy
from processors.scoring import Rulebook
from schemas.codec import SENSOR_SCHEMAS, CodecError, decode

KIND_BY_SCHEMA = {schema.name: kind for kind, schema in SENSOR_SCHEMAS.items()}
SANCTIONS_NS = uuid.UUID("6f6d6f69-7373-6f6e-2d73-616e6374696f")


class Rejection(StrEnum):
    """Why a message was not applied."""

    UNDECODABLE = "undecodable"
    NOT_HARVESTED = "not-harvested"
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


def apply_message(
    current: Double | None,
    *,
    expected_kind: str | None,
    topic: str,
    key: bytes | None,
    value: bytes,
    rules: Rulebook | None = None,
    privacy: Privacy | None = None,
) -> Outcome:
    """Merge one sensor message into ``current`` (the double stored under its key).

    ``expected_kind`` is the kind the topic carries; None accepts any sensor kind.
    ``current`` is the double stored under the (possibly pseudonymised) citizen id.
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
    if privacy is not None:
        if not privacy.harvests(kind):
            return Outcome(citizen_id=cid, rejected=Rejection.NOT_HARVESTED, detail=kind)
        record = dict(privacy.apply(record))
        cid = str(record["citizen_id"])
    new = fold(current, Event(kind, record), rules)
    if new is current:
        return Outcome(citizen_id=cid, rejected=Rejection.DUPLICATE, detail=str(record["event_id"]))
    return Outcome(double=new, citizen_id=cid)


def sanction_for(
    before: Double | None, after: Double, rules: Rulebook | None = None
) -> dict[str, Any] | None:
    """The sanction to publish when a double's blacklist state changed, else None."""
    rules = rules or default_rules()
    was = bool(before and before["blacklisted"])
    if was == after["blacklisted"]:
        return None
    period = after["blacklist"][-1] if after["blacklist"] else None
    if after["blacklisted"]:
        assert period is not None
        at, threshold = period["entered_at"], rules.blacklist_threshold
        trigger = period["event_id"]
        reason = f"score {period['score_at_entry']} fell under {threshold}"
    else:
        closed = [p for p in after["blacklist"] if p["lifted_at"] is not None]
        at = closed[-1]["lifted_at"] if closed else after["last_seen"]
        threshold = rules.recovery_threshold
        trigger = "lifted"
        reason = f"score {after['score']} climbed back to {threshold} or more"
        if not closed:  # the blacklisting was undone by an earlier-dated event
            reason = "a late event changed the score history: no longer under the threshold"
    cid = after["citizen_id"]
    return {
        "sanction_id": str(uuid.uuid5(SANCTIONS_NS, f"{cid}/{at.isoformat()}/{trigger}")),
        "citizen_id": cid,
        "kind": "BLACKLIST",
        "active": after["blacklisted"],
        "score": after["score"],
        "threshold": threshold,
        "reason": reason,
        "issued_at": at,
        "double_version": after["version"],
    }
