"""Avro single-object encoding: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + body.

The framing needs no schema registry: every message names its writer schema by
fingerprint, so a reader holding the ``.avsc`` files can decode any of them.
fastavro has no helper for it (fastavro#501), hence this small module.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
SCHEMA_DIR = Path(__file__).parent


class Reason(StrEnum):
    """Why bytes could not be decoded."""

    NOT_SINGLE_OBJECT = "not-single-object"
    UNKNOWN_FINGERPRINT = "unknown-fingerprint"
    TRUNCATED = "truncated-body"
    TRAILING_BYTES = "trailing-bytes"
    INVALID_BODY = "invalid-body"


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

    @property
    def header(self) -> bytes:
        return MAGIC + self.fingerprint


def _load(path: Path) -> Schema:
    raw = json.loads(path.read_text(encoding="utf-8"))
    # Parsed once with its hint, so schemaless_writer/reader do not re-parse per record.
    parsed = fastavro.parse_schema(raw)
    canonical = to_parsing_canonical_form(raw)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return Schema(
        name=cast(dict[str, Any], parsed)["name"],
        parsed=parsed,
        canonical=canonical,
        fingerprint=fp,
    )


class Registry:
    """Schemas by full name and by fingerprint."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self.by_name: dict[str, Schema] = {}
        self.by_fingerprint: dict[bytes, Schema] = {}
        for path in sorted(directory.glob("*.avsc")):
            self.add(_load(path))

    def add(self, schema: Schema) -> None:
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

#: The sensor schemas by sensor kind; the kind also names the topic suffix.
SENSOR_SCHEMAS: dict[str, Schema] = {
    "metro": METRO,
    "payment": PAYMENT,
    "book": BOOK,
    "camera": CAMERA,
}


def encode(schema: Schema, record: Mapping[str, Any]) -> bytes:
    """Encode ``record`` with ``schema`` as an Avro single object."""
    buf = io.BytesIO()
    buf.write(schema.header)
    try:
        fastavro.schemaless_writer(buf, schema.parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CodecError(Reason.INVALID_BODY, f"cannot encode as {schema.name}: {exc}") from exc
    return buf.getvalue()


def schema_of(data: bytes) -> Schema:
    """The writer schema named by the header of ``data``."""
    if len(data) < HEADER_LEN or data[:2] != MAGIC:
        raise CodecError(
            Reason.NOT_SINGLE_OBJECT,
            f"expected header C3 01 + 8-byte fingerprint, got {bytes(data[:HEADER_LEN]).hex(' ')!r}"
            f" ({len(data)} bytes)",
        )
    fp = bytes(data[2:HEADER_LEN])
    try:
        return registry.by_fingerprint[fp]
    except KeyError:
        raise CodecError(
            Reason.UNKNOWN_FINGERPRINT, f"no schema has fingerprint {fp.hex()}"
        ) from None


def decode(data: bytes, reader: Schema | None = None) -> tuple[Schema, dict[str, Any]]:
    """Decode single-object bytes into ``(writer schema, record)``.

    With ``reader``, the record is resolved from the writer schema to it (schema evolution).
    Every failure raises :class:`CodecError`; nothing else escapes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(Reason.NOT_SINGLE_OBJECT, f"expected bytes, got {type(data).__name__}")
    writer = schema_of(data)
    buf = io.BytesIO(data)
    buf.seek(HEADER_LEN)
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
