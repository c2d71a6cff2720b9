"""The events a double holds, packed: 24 bytes each in one ``bytes`` value, sorted.

Each record is the event's ``occurred_at`` in milliseconds (8 bytes, big-endian, so the
bytes sort in time order) then its id in 16 bytes. Pure: imports no faust, Kafka or
SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from datetime import datetime
from typing import Any

#: One held event: occurred_at (ms, big-endian) then a 16-byte id.
HELD = 24
MS = struct.Struct(">q")


def event_id_bytes(event_id: str) -> bytes:
    """An event id in 16 bytes: the UUID itself, or a BLAKE2b digest of any other id."""
    try:
        return uuid.UUID(event_id).bytes
    except ValueError:
        return hashlib.blake2b(event_id.encode(), digest_size=16).digest()


def held_index(held: bytes, ident: bytes) -> int:
    """Where ``ident`` sits in ``held`` (a record index), or -1."""
    i = held.find(ident, 8)
    while i != -1:
        if i % HELD == 8:
            return i // HELD
        i = held.find(ident, i + 1)
    return -1


def hold(held: bytes, record: bytes) -> bytes:
    """``held`` with ``record`` inserted in sorted place (nearly always at the end)."""
    n = len(held) // HELD
    if n == 0 or held[-HELD:] <= record:
        return held + record
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if held[mid * HELD : (mid + 1) * HELD] <= record:
            lo = mid + 1
        else:
            hi = mid
    return held[: lo * HELD] + record + held[lo * HELD :]


def held_events(double: dict[str, Any]) -> list[tuple[int, bytes]]:
    """(occurred_at ms, 16-byte id) of every event the double holds, in order."""
    held = double["recent_events"]
    return [(MS.unpack_from(held, i)[0], held[i + 8 : i + HELD]) for i in range(0, len(held), HELD)]


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def first_at(held: bytes, at_ms: int) -> int:
    """The index of the first held event at or after ``at_ms`` (a bisection)."""
    line = MS.pack(max(0, at_ms))  # held times are never before 1970
    lo, hi = 0, len(held) // HELD
    while lo < hi:
        mid = (lo + hi) // 2
        if held[mid * HELD : mid * HELD + 8] < line:
            lo = mid + 1
        else:
            hi = mid
    return lo


def held_since(held: bytes, at_ms: int) -> int:
    """How many held events happened at or after ``at_ms``."""
    return len(held) // HELD - first_at(held, at_ms)
