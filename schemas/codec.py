"""Avro framings: single-object encoding (the default) and the Confluent wire format.

- Single object: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + body. It needs no
  schema registry: every message names its writer schema by fingerprint, so a
  reader holding the ``.avsc`` files can decode any of them. fastavro has no
  helper for it (fastavro#501), hence this small module.
- Confluent: ``00`` + 4-byte big-endian schema id + body, written in schema
  registry mode. :func:`decode` reads both, so a topic may carry both; a schema
  id is turned into a writer schema by the ``resolver`` passed to :func:`decode`
  (this module does no HTTP and reads no settings; see :mod:`schemas.registry_client`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LEN = len(CONFLUENT_MAGIC) + 4
SCHEMA_DIR = Path(__file__).parent


class Reason(StrEnum):
    """Why bytes could not be decoded."""

    NOT_SINGLE_OBJECT = "not-single-object"
    UNKNOWN_FINGERPRINT = "unknown-fingerprint"
    TRUNCATED = "truncated-body"
    TRAILING_BYTES = "trailing-bytes"
    INVALID_BODY = "invalid-body"
    UNKNOWN_SCHEMA_ID = "unknown-schema-id"
    UNKNOWN_SCHEMA = "unknown-schema"  # a registry schema that is none of ours: not decoded
    REGISTRY_UNAVAILABLE = "schema-registry-unavailable"


class CodecError(ValueError):
    """Bytes that cannot be decoded, or a record that cannot be encoded, with the reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Schema:
    """One parsed ``.avsc`` with its single-object header."""

    name: str
    parsed: Any
    canonical: str
    fingerprint: bytes
    text: str = ""
    """The schema's JSON as written (docs and defaults kept), e.g. to register it."""

    @property
    def header(self) -> bytes:
        return MAGIC + self.fingerprint


def _load(path: Path) -> Schema:
    return schema_from_json(path.read_text(encoding="utf-8"))


def schema_from_json(text: str) -> Schema:
    """A :class:`Schema` from its JSON text (an ``.avsc`` file, or a registry's answer)."""
    raw = json.loads(text)
    # Parsed once with its hint, so schemaless_writer/reader do not re-parse per record.
    parsed = fastavro.parse_schema(raw)
    canonical = to_parsing_canonical_form(raw)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return Schema(
        name=cast(dict[str, Any], parsed)["name"],
        parsed=parsed,
        canonical=canonical,
        fingerprint=fp,
        text=text,
    )


def unbounded_parts(parsed: Any) -> list[str]:
    """Where decoding a schema could outgrow its bytes: arrays whose items may take no
    byte (null, an empty record, a zero-size fixed) and recursive types.

    fastavro reads an array's declared item count without a cap (a 16-byte
    ``array<null>`` message declares 2^62 items and fills memory); when every item takes
    at least one byte, it stops at the end of the bytes, so the work is bounded by the
    message's length.
    """
    found: list[str] = []
    _may_be_empty(parsed, {}, "", found)
    return found


def _may_be_empty(t: Any, named: dict[str, bool | None], at: str, found: list[str]) -> bool:
    """Whether ``t`` may encode in zero bytes; what is unbounded is added to ``found``."""
    if isinstance(t, str):
        if t in named:
            if named[t] is None:
                found.append(f"{at or '.'}: recursive type {t}")
            return bool(named[t])
        return t == "null"
    if isinstance(t, list):  # a union: its branch index takes a byte
        for i, branch in enumerate(t):
            _may_be_empty(branch, named, f"{at}|{i}", found)
        return False
    kind = t["type"]
    if not isinstance(kind, str):
        return _may_be_empty(kind, named, at, found)
    empty = kind == "null"
    if kind in ("record", "error"):
        named[t["name"]] = None  # being defined: a reference to it now is a recursion
        fields = [_may_be_empty(f["type"], named, f"{at}.{f['name']}", found) for f in t["fields"]]
        empty = all(fields)
    elif kind == "fixed":
        empty = t["size"] == 0
    elif kind == "array" and _may_be_empty(t["items"], named, f"{at}[]", found):
        found.append(f"{at or '.'}: an array of items that may take no byte")
    elif kind == "map":
        _may_be_empty(t["values"], named, f"{at}{{}}", found)
    if kind in ("record", "error", "fixed", "enum"):
        named[t["name"]] = empty
    return empty


class Registry:
    """Schemas by full name and by fingerprint."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self.by_name: dict[str, Schema] = {}
        self.by_fingerprint: dict[bytes, Schema] = {}
        for path in sorted(directory.glob("*.avsc")):
            self.add(_load(path))

    def add(self, schema: Schema) -> None:
        """Add ``schema``; ValueError when its decoding would not be bounded by its bytes."""
        unbounded = unbounded_parts(schema.parsed)
        if unbounded:
            raise ValueError(f"{schema.name}: decoding is not bounded by the bytes: {unbounded}")
        self.by_name[schema.name] = schema
        self.by_fingerprint[schema.fingerprint] = schema

    def __getitem__(self, name: str) -> Schema:
        return self.by_name[name]


registry = Registry()

METRO = registry["org.moisson.sensors.MetroPassage"]
PAYMENT = registry["org.moisson.sensors.Payment"]
BOOK = registry["org.moisson.sensors.BookPurchase"]
CAMERA = registry["org.moisson.sensors.CameraSighting"]
DOUBLE = registry["org.moisson.double.DigitalDouble"]
SANCTION = registry["org.moisson.double.Sanction"]
LEDGER = registry["org.moisson.ledger.LedgerEntry"]
BLACKLIST = registry["org.moisson.ledger.BlacklistUpdate"]

#: The sensor schemas by sensor kind; the kind also names the topic suffix.
SENSOR_SCHEMAS: dict[str, Schema] = {
    "metro": METRO,
    "payment": PAYMENT,
    "book": BOOK,
    "camera": CAMERA,
}


IdResolver = Callable[[int], Schema | None]
"""Turns a registry schema id into its writer schema; None when the registry has no such id.

It may raise :class:`CodecError` (e.g. ``REGISTRY_UNAVAILABLE``); any other exception
it raises is reported as ``REGISTRY_UNAVAILABLE`` too. A schema it returns that is none
of ours is refused (``UNKNOWN_SCHEMA``), never decoded.
"""


def _body(schema: Schema, record: Mapping[str, Any], header: bytes) -> bytes:
    buf = io.BytesIO()
    buf.write(header)
    try:
        fastavro.schemaless_writer(buf, schema.parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CodecError(Reason.INVALID_BODY, f"cannot encode as {schema.name}: {exc}") from exc
    return buf.getvalue()


def encode(schema: Schema, record: Mapping[str, Any]) -> bytes:
    """Encode ``record`` with ``schema`` as an Avro single object."""
    return _body(schema, record, schema.header)


def encode_confluent(schema: Schema, schema_id: int, record: Mapping[str, Any]) -> bytes:
    """Encode ``record`` in the Confluent wire format, ``schema`` being registered as
    ``schema_id``."""
    if not 0 <= schema_id < 2**32:
        raise CodecError(Reason.INVALID_BODY, f"schema id {schema_id} does not fit 4 bytes")
    return _body(schema, record, CONFLUENT_MAGIC + schema_id.to_bytes(4, "big"))


def schema_id_of(data: bytes) -> int | None:
    """The registry schema id of Confluent-framed ``data``, None for any other bytes."""
    if len(data) >= CONFLUENT_HEADER_LEN and data[:1] == CONFLUENT_MAGIC:
        return int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")
    return None


def schema_of(data: bytes) -> Schema:
    """The writer schema named by the single-object header of ``data``."""
    if len(data) < HEADER_LEN or data[:2] != MAGIC:
        raise CodecError(
            Reason.NOT_SINGLE_OBJECT,
            "expected a single-object header (C3 01 + 8-byte fingerprint) or a Confluent one"
            f" (00 + 4-byte schema id), got {bytes(data[:HEADER_LEN]).hex(' ')!r}"
            f" ({len(data)} bytes)",
        )
    fp = bytes(data[2:HEADER_LEN])
    try:
        return registry.by_fingerprint[fp]
    except KeyError:
        raise CodecError(
            Reason.UNKNOWN_FINGERPRINT, f"no schema has fingerprint {fp.hex()}"
        ) from None


def _resolve_id(schema_id: int, resolver: IdResolver | None) -> Schema:
    if resolver is None:
        raise CodecError(
            Reason.UNKNOWN_SCHEMA_ID,
            f"schema id {schema_id} (Confluent framing) but no schema registry is configured",
        )
    try:
        schema = resolver(schema_id)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(
            Reason.REGISTRY_UNAVAILABLE, f"schema id {schema_id}: {type(exc).__name__}: {exc}"
        ) from exc
    if schema is None:
        raise CodecError(Reason.UNKNOWN_SCHEMA_ID, f"the registry has no schema id {schema_id}")
    mine = registry.by_fingerprint.get(schema.fingerprint)
    if mine is None or mine.canonical != schema.canonical:
        raise CodecError(
            Reason.UNKNOWN_SCHEMA,
            f"schema id {schema_id} ({schema.name}) is none of moisson's schemas: not decoded",
        )
    return mine


def ours(text: Any) -> Schema:
    """Our schema whose parsing canonical form the JSON ``text`` has (a registry's answer).

    Anything else raises ``UNKNOWN_SCHEMA``: a registry anyone can write to may hold any
    schema, and only ours are known to decode in time and memory bounded by the bytes.
    The text is parsed to find its canonical form, never used to decode.
    """
    if not isinstance(text, str):
        raise CodecError(Reason.UNKNOWN_SCHEMA, f"a schema's text, got {type(text).__name__}")
    try:
        canonical = to_parsing_canonical_form(json.loads(text))
        fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    except Exception as exc:  # any JSON may come, RecursionError included
        raise CodecError(
            Reason.UNKNOWN_SCHEMA, f"not an Avro schema: {type(exc).__name__}: {exc}"[:200]
        ) from None
    mine = registry.by_fingerprint.get(fp)
    if mine is None or mine.canonical != canonical:
        raise CodecError(
            Reason.UNKNOWN_SCHEMA, f"canonical form {fp.hex()} is none of moisson's schemas"
        )
    return mine


def decode(
    data: bytes, reader: Schema | None = None, *, resolver: IdResolver | None = None
) -> tuple[Schema, dict[str, Any]]:
    """Decode single-object or Confluent-framed bytes into ``(writer schema, record)``.

    ``resolver`` turns the schema id of Confluent-framed bytes into its writer schema;
    without one, such bytes raise ``UNKNOWN_SCHEMA_ID``; a registry schema that is none
    of ours raises ``UNKNOWN_SCHEMA`` without being decoded. Every writer schema is thus
    one of ours, whose decoding stops at the end of the bytes (:func:`unbounded_parts`).

    With ``reader``, the record is resolved from the writer schema to it (schema evolution).
    Every failure raises :class:`CodecError`; nothing else escapes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(Reason.NOT_SINGLE_OBJECT, f"expected bytes, got {type(data).__name__}")
    schema_id = schema_id_of(data)
    if schema_id is not None:
        writer, start = _resolve_id(schema_id, resolver), CONFLUENT_HEADER_LEN
    else:
        writer, start = schema_of(data), HEADER_LEN
    buf = io.BytesIO(data)
    buf.seek(start)
    try:
        record = fastavro.schemaless_reader(
            buf, writer.parsed, reader.parsed if reader is not None else None
        )
    except (EOFError, StopIteration) as exc:
        raise CodecError(Reason.TRUNCATED, f"{writer.name} body ends early") from exc
    except Exception as exc:  # fastavro raises many types on garbage bodies
        message = f"{type(exc).__name__}: {exc}"
        if len(message) > 200:
            message = message[:200] + "…"
        raise CodecError(Reason.INVALID_BODY, f"{writer.name}: {message}") from exc
    if buf.tell() != len(data):
        raise CodecError(
            Reason.TRAILING_BYTES, f"{writer.name} ends at byte {buf.tell()} of {len(data)}"
        )
    if not isinstance(record, dict):
        raise CodecError(Reason.INVALID_BODY, f"{writer.name} did not decode to a record")
    return writer, record
