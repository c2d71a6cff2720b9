"""One sensor message in, one updated double (or a clear rejection) out.

This is what the faust agent does per message, kept free of faust so it can be
tested and reused directly: decode, validate, fold, and decide on sanctions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from processors.core.fold import (
    AGGREGATES,
    Double,
    Event,
    as_datetime,
    default_rules,
    fold_entries,
    folded_keys,
)
from processors.core.held import held_since, ms
from processors.core.privacy import Privacy
from processors.core.scoring import Rulebook
from schemas.codec import SENSOR_SCHEMAS, CodecError, IdResolver, Reason, decode

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AMOUNT_FIELDS = ("fare_cents", "amount_cents", "price_cents")
KIND_BY_SCHEMA = {schema.name: kind for kind, schema in SENSOR_SCHEMAS.items()}
SANCTIONS_NS = uuid.UUID("6f6d6f69-7373-6f6e-2d73-616e6374696f")


class Rejection(StrEnum):
    """Why a message was not applied: the ``moisson.reason`` header of its dead letter.

    The codec's reasons come first (bytes that are not one of our Avro records), then
    records that decode but are not a valid sensor event. Duplicates and kinds left
    unharvested by the privacy settings are expected, not dead letters.
    """

    NOT_SINGLE_OBJECT = Reason.NOT_SINGLE_OBJECT.value
    UNKNOWN_FINGERPRINT = Reason.UNKNOWN_FINGERPRINT.value
    TRUNCATED = Reason.TRUNCATED.value
    TRAILING_BYTES = Reason.TRAILING_BYTES.value
    INVALID_BODY = Reason.INVALID_BODY.value
    UNKNOWN_SCHEMA_ID = Reason.UNKNOWN_SCHEMA_ID.value
    UNKNOWN_SCHEMA = Reason.UNKNOWN_SCHEMA.value
    REGISTRY_UNAVAILABLE = Reason.REGISTRY_UNAVAILABLE.value
    UNDECODABLE = "undecodable"
    OVERSIZE = "oversize"
    NOT_A_SENSOR_EVENT = "not-a-sensor-event"
    WRONG_TOPIC = "wrong-topic"
    KEY_MISMATCH = "key-mismatch"
    MISSING_CITIZEN = "missing-citizen"
    PRE_EPOCH = "pre-epoch-timestamp"
    FUTURE = "future-timestamp"
    NEGATIVE_AMOUNT = "negative-amount"
    OUT_OF_RANGE = "out-of-range"
    NUL_CHARACTER = "nul-character"
    NOT_HARVESTED = "not-harvested"
    DUPLICATE = "duplicate"
    OFFSETS_MISSING = "offsets-missing"  # a range of a partition never delivered
    TOO_LATE = "too-late"  # older than the allowed lateness behind its partition's watermark
    WRONG_PARTITION = "wrong-partition"  # not on its key's partition under Kafka's partitioner
    KEY_TOO_LONG = "key-too-long"  # a string the double would keep as a key is over the cap
    TOO_MANY_KEYS = "too-many-keys"  # would add a key to a map already at its cap
    CITIZEN_BURST = "citizen-burst"  # the citizen holds the most events a window may hold
    STATE_TOO_LARGE = "state-too-large"  # the encoded double would pass its size cap
    FOLD_ERROR = "fold-error"  # the fold raised (a forged double): the exception's name

    @property
    def dead_letter(self) -> bool:
        """Whether the message goes to the dead-letter topic."""
        return self not in (Rejection.DUPLICATE, Rejection.NOT_HARVESTED)


#: The fields whose values a double keeps as keys (its aggregates, and the citizen id).
KEY_FIELDS = ("citizen_id", "event_id", *(f for _, f in AGGREGATES.values()), "location")


@dataclass(frozen=True, slots=True)
class Limits:
    """What a sensor message may be, and how much one citizen's double may hold;
    anything else is a dead letter (README: Bad input, bounds and security)."""

    max_message_bytes: int = 65536
    max_future_s: float = 86400.0  # clock skew a sensor may have, ahead of the processor
    #: A citizen or event id, station, title, category, behaviour, place or companion: at
    #: most this many bytes of UTF-8 (the sink's cap on what PostgreSQL indexes).
    max_key_bytes: int = 256
    #: Distinct keys in each of a double's maps (places, purchases, books, sightings,
    #: associates): a sensor chooses them, so without a cap one citizen grows unbounded.
    max_keys: int = 128
    #: Events of one citizen a double may hold within ``burst_window_s`` before an event
    #: (a burst): the cost of folding grows with what a double holds.
    max_burst_events: int = 1000
    burst_window_s: float = 7 * 86400.0
    #: The encoded double's size: under the broker's default message limit (1 MiB).
    max_double_bytes: int = 786432

    def check(self, record: dict[str, Any], now: datetime | None = None) -> Outcome | None:
        """A rejection when a decoded record is not a valid event, else None."""
        cid = record.get("citizen_id")
        if not isinstance(cid, str) or not cid.strip():
            return Outcome(rejected=Rejection.MISSING_CITIZEN, detail=f"citizen_id {cid!r}")
        at = record.get("occurred_at")
        if isinstance(at, datetime):
            if at < EPOCH:
                return Outcome(rejected=Rejection.PRE_EPOCH, detail=f"occurred_at {at}")
            latest = (now or datetime.now(UTC)) + timedelta(seconds=self.max_future_s)
            if at > latest:
                return Outcome(rejected=Rejection.FUTURE, detail=f"occurred_at {at} > {latest}")
        for field in AMOUNT_FIELDS:
            if isinstance(record.get(field), int) and record[field] < 0:
                return Outcome(
                    rejected=Rejection.NEGATIVE_AMOUNT, detail=f"{field} {record[field]}"
                )
        conf = record.get("confidence")
        if isinstance(conf, float) and not 0.0 <= conf <= 1.0:  # NaN fails too
            return Outcome(rejected=Rejection.OUT_OF_RANGE, detail=f"confidence {conf}")
        cap = self.max_key_bytes
        for name in KEY_FIELDS:
            value = record.get(name)
            if type(value) is str and len(value) * 4 > cap and len(value.encode()) > cap:
                return _too_long(name, len(value.encode()), cap)
        for v in record.get("companions") or ():
            if type(v) is str and len(v) * 4 > cap and len(v.encode()) > cap:
                return _too_long("companions", len(v.encode()), cap)
        for name, value in record.items():  # plain loops: this runs for every event
            if type(value) is str:
                if "\x00" in value:
                    return _nul(name)
            elif type(value) is list:
                for v in value:
                    if type(v) is str and "\x00" in v:
                        return _nul(name)
        return None

    def bound(self, current: Double | None, event: Event) -> Outcome | None:
        """A rejection when folding ``event`` would take its double past a cap."""
        if current is None:
            return None
        at = ms(as_datetime(event.record["occurred_at"]))
        held = held_since(current["recent_events"], at - int(self.burst_window_s * 1000))
        if held >= self.max_burst_events:
            return Outcome(
                rejected=Rejection.CITIZEN_BURST,
                detail=f"{held} events held within {self.burst_window_s:g} s before this one, "
                f"limit {self.max_burst_events}",
            )
        for aggregate, keys in folded_keys(event).items():
            have = current[aggregate]
            new = {k for k in keys if k not in have}
            if len(have) + len(new) > self.max_keys:
                return Outcome(
                    rejected=Rejection.TOO_MANY_KEYS,
                    detail=f"{aggregate}: {len(have)} keys held, {len(new)} more, "
                    f"limit {self.max_keys}",
                )
        return None


def _too_long(name: str, n: int, cap: int) -> Outcome:
    return Outcome(rejected=Rejection.KEY_TOO_LONG, detail=f"{name}: {n} bytes, limit {cap}")


def _nul(name: str) -> Outcome:
    # PostgreSQL text and jsonb cannot hold U+0000.
    return Outcome(rejected=Rejection.NUL_CHARACTER, detail=f"{name} contains U+0000")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The new double, or why there is none."""

    double: Double | None = None
    citizen_id: str | None = None
    rejected: Rejection | None = None
    detail: str = ""
    #: When a valid event happened (its partition's watermark moves on with it).
    occurred_at: datetime | None = None
    #: The ledger entries the event added (what the ledger topic gets).
    entries: tuple[dict[str, Any], ...] = ()


DEFAULT_LIMITS = Limits()


def apply_message(
    current: Double | None,
    *,
    expected_kind: str | None,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    rules: Rulebook | None = None,
    privacy: Privacy | None = None,
    limits: Limits = DEFAULT_LIMITS,
    not_before: datetime | None = None,
    resolver: IdResolver | None = None,
) -> Outcome:
    """Merge one sensor message into ``current`` (the double stored under its key).

    ``expected_kind`` is the kind the topic carries; None accepts any sensor kind.
    ``current`` is the double stored under the (possibly pseudonymised) citizen id.
    ``not_before`` is the partition's watermark minus the allowed lateness: an event
    that happened before it is refused as too late (README: Lateness).
    ``resolver`` resolves the schema ids of Confluent-framed messages (registry mode).
    """
    if value is None:
        return Outcome(rejected=Rejection.NOT_SINGLE_OBJECT, detail="no value (a tombstone)")
    if len(value) > limits.max_message_bytes:
        return Outcome(
            rejected=Rejection.OVERSIZE,
            detail=f"{len(value)} bytes, limit {limits.max_message_bytes}",
        )
    try:
        schema, record = decode(value, resolver=resolver)
    except CodecError as exc:
        try:
            reason = Rejection(exc.reason.value)
        except ValueError:
            reason = Rejection.UNDECODABLE
        return Outcome(rejected=reason, detail=str(exc))
    kind = KIND_BY_SCHEMA.get(schema.name)
    if kind is None:
        return Outcome(rejected=Rejection.NOT_A_SENSOR_EVENT, detail=schema.name)
    if expected_kind is not None and kind != expected_kind:
        return Outcome(rejected=Rejection.WRONG_TOPIC, detail=f"a {kind} event on {topic}")
    invalid = limits.check(record)
    if invalid is not None:
        return invalid
    cid = str(record["citizen_id"])
    if key is None or key.decode("utf-8", "replace") != cid:
        return Outcome(
            rejected=Rejection.KEY_MISMATCH, detail=f"key {key!r} but citizen_id {cid!r}"
        )
    at = record["occurred_at"]
    if privacy is not None:
        if not privacy.harvests(kind):
            return Outcome(
                citizen_id=cid, rejected=Rejection.NOT_HARVESTED, detail=kind, occurred_at=at
            )
        record = dict(privacy.apply(record))
        cid = str(record["citizen_id"])
    if not_before is not None and at < not_before:
        return Outcome(
            citizen_id=cid,
            rejected=Rejection.TOO_LATE,
            detail=f"occurred_at {at.isoformat()} is before {not_before.isoformat()}",
        )
    event = Event(kind, record)
    over = limits.bound(current, event)
    if over is not None:
        return replace(over, citizen_id=cid, occurred_at=at)
    new, entries = fold_entries(current, event, rules)
    if new is current:
        return Outcome(
            citizen_id=cid,
            rejected=Rejection.DUPLICATE,
            detail=str(record["event_id"]),
            occurred_at=at,
        )
    return Outcome(double=new, citizen_id=cid, occurred_at=at, entries=tuple(entries))


def sanction_for(
    before: Double | None, after: Double, rules: Rulebook | None = None
) -> dict[str, Any] | None:
    """The sanction to publish when a double's blacklist state changed, else None."""
    was = bool(before and before["blacklisted"])
    if was == after["blacklisted"]:
        return None
    return sanction_state(after, rules)


def sanction_state(double: Double, rules: Rulebook | None = None) -> dict[str, Any]:
    """The sanction that states ``double``'s blacklist state now: the one published
    when it last changed (the same id), or a lift when it never was."""
    rules = rules or default_rules()
    period = double["blacklist"][-1] if double["blacklist"] else None
    if double["blacklisted"]:
        assert period is not None
        at, threshold = period["entered_at"], rules.blacklist_threshold
        trigger = period["event_id"]
        reason = f"score {period['score_at_entry']} fell under {threshold}"
    else:
        closed = [p["lifted_at"] for p in double["blacklist"] if p["lifted_at"] is not None]
        cp = double.get("checkpoint")
        if not closed and cp is not None and cp["last_lifted"] is not None:
            closed = [cp["last_lifted"]]  # the last period was sealed into the checkpoint
        at = closed[-1] if closed else double["last_seen"]
        threshold = rules.recovery_threshold
        trigger = "lifted"
        reason = f"score {double['score']} climbed back to {threshold} or more"
        if not closed:  # never blacklisted, or a late event undid the blacklisting
            reason = "no blacklist period in the score history: not under the threshold"
    cid = double["citizen_id"]
    return {
        "sanction_id": str(uuid.uuid5(SANCTIONS_NS, f"{cid}/{at.isoformat()}/{trigger}")),
        "citizen_id": cid,
        "kind": "BLACKLIST",
        "active": double["blacklisted"],
        "score": double["score"],
        "threshold": threshold,
        "reason": reason,
        "issued_at": at,
        "double_version": double["version"],
    }
