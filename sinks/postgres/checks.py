"""What PostgreSQL would refuse, checked before it does: one hostile record then costs
a dead letter, not a failed transaction and a bisection of its batch.

The checks follow the tables (:mod:`sinks.postgres.tables`): an ``integer`` column
takes 32-bit values, a ``bigint`` 64-bit ones (an Avro ``int`` on the wire can carry
more: fastavro reads whatever varint comes); text and JSONB hold no NUL character; an
indexed text column holds at most :data:`KEY_BYTES_MAX` bytes (a btree entry must fit
a third of a page, about 2.7 KB); a ledger entry names a rule of the rulebook (its
explanation is stored with it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from sinks.base import Record, Refusal
from sinks.postgres.tables import PROFILE_FIELDS, blacklist, citizen_profiles, score_ledger

#: Longest id (citizen, event) the sink stores, in UTF-8 bytes: far above any real id
#: (ids are a few dozen bytes), far below PostgreSQL's btree limit (2,704 bytes).
KEY_BYTES_MAX = 256
INTEGER = (-(2**31), 2**31 - 1)
BIGINT = (-(2**63), 2**63 - 1)

TOO_LONG = "too-long"
OUT_OF_RANGE = "out-of-range"
NUL_CHARACTER = "nul-character"
UNKNOWN_RULE = "unknown-rule"


def _indexed(table: Table) -> set[str]:
    names = {c.name for c in table.primary_key.columns}
    for index in table.indexes:
        names |= {c.name for c in index.columns}
    return names


def _fields(table: Table, renamed: Mapping[str, str] | None = None) -> dict[str, Column[Any]]:
    """Record field → the column it is written to."""
    columns = {c.name: c for c in table.columns}
    return {(renamed or {}).get(name, name): col for name, col in columns.items()}


#: Per kind of record (:data:`sinks.base.KINDS`): its fields and their columns.
COLUMNS: dict[str, dict[str, Column[Any]]] = {
    "doubles": {f: citizen_profiles.c[f] for f in PROFILE_FIELDS},
    "ledger": {f: c for f, c in _fields(score_ledger).items() if f != "explanation"},
    "blacklist": _fields(blacklist, {"version": "double_version"}),
}
INDEXED = {
    "doubles": _indexed(citizen_profiles),
    "ledger": _indexed(score_ledger),
    "blacklist": _indexed(blacklist),
}


def _range_of(column: Column[Any]) -> tuple[int, int] | None:
    if isinstance(column.type, BigInteger):  # before Integer: a BigInteger is one
        return BIGINT
    if isinstance(column.type, Integer):
        return INTEGER
    return None


def _shown(value: str) -> str:
    return repr(value[:40]) + ("…" if len(value) > 40 else "")


def _has_nul(value: Any) -> bool:
    """A NUL anywhere in a string, or in a map's keys and values, a list's items."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        try:
            keys = "\x00" in "".join(value)  # Avro maps: text keys, one C-speed scan
        except TypeError:
            keys = any(_has_nul(k) for k in value)
        return keys or any(not isinstance(v, int) and _has_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def check(kind: str, record: Record, rules: Collection[str]) -> Refusal | None:
    """Why PostgreSQL would refuse ``record`` (a ``kind`` of :data:`sinks.base.KINDS`),
    or None; ``rules`` are the rule ids the ledger may name."""
    columns, indexed = COLUMNS[kind], INDEXED[kind]
    for field, column in columns.items():
        value = record.get(field)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            bounds = _range_of(column)
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                return Refusal(
                    OUT_OF_RANGE,
                    f"{field} = {value} is outside PostgreSQL {column.type} "
                    f"({bounds[0]}..{bounds[1]})",
                )
        elif isinstance(value, str) and isinstance(column.type, String):
            if "\x00" in value:
                return Refusal(NUL_CHARACTER, f"{field} holds a NUL character ({_shown(value)})")
            if field in indexed and len(value) * 4 > KEY_BYTES_MAX:
                size = len(value.encode("utf-8", "surrogatepass"))
                if size > KEY_BYTES_MAX:
                    return Refusal(
                        TOO_LONG,
                        f"{field} is {size:,} bytes of UTF-8 ({_shown(value)}); "
                        f"the sink stores at most {KEY_BYTES_MAX}",
                    )
        elif isinstance(column.type, JSONB) and _has_nul(value):
            return Refusal(NUL_CHARACTER, f"{field} holds a NUL character in a key or value")
    if kind == "ledger" and record.get("rule_id") not in rules:
        rule = str(record.get("rule_id"))
        return Refusal(UNKNOWN_RULE, f"rule {_shown(rule)} is not in the sink's rulebook")
    return None
