"""Avro schemas (one ``.avsc`` per record) and the single-object codec."""

from schemas.codec import (
    DOUBLE,
    SANCTION,
    SENSOR_SCHEMAS,
    CodecError,
    Schema,
    decode,
    encode,
    registry,
)

__all__ = [
    "DOUBLE",
    "SANCTION",
    "SENSOR_SCHEMAS",
    "CodecError",
    "Schema",
    "decode",
    "encode",
    "registry",
]
