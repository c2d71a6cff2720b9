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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from sinks.base import Record, Refusal
from sinks.postgres.tables import blacklist, citizen_profiles, score_ledger

#: Longest indexed text the sink stores (every ``citizen_id``; the ledger's ``event_id``
#: and ``rule_id``), in UTF-8 bytes: far above any real id (a few dozen bytes), far
#: below PostgreSQL's btree limit (2,704 bytes for a whole index entry).
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


@dataclass(frozen=True)
class Plan:
    """What to check in one kind of record, read once from its table: (field, low,
    high) of each integer column, the text fields, the indexed ones, the JSONB ones."""

    ints: tuple[tuple[str, int, int, str], ...]
    texts: tuple[str, ...]
    keys: tuple[str, ...]
    jsons: tuple[str, ...]


def plan(
    table: Table, renamed: Mapping[str, str] | None = None, skip: Collection[str] = ()
) -> Plan:
    """The checks of the records written to ``table`` (``renamed``: column → field;
    ``skip``: columns the sink fills itself, like those with a server default)."""
    fields = [
        ((renamed or {}).get(c.name, c.name), c)
        for c in table.columns
        if c.name not in skip and c.server_default is None
    ]
    indexed = _indexed(table)
    ints: list[tuple[str, int, int, str]] = []
    for f, c in fields:
        if isinstance(c.type, BigInteger):  # before Integer: a BigInteger is one
            ints.append((f, BIGINT[0], BIGINT[1], "BIGINT"))
        elif isinstance(c.type, Integer):
            ints.append((f, INTEGER[0], INTEGER[1], "INTEGER"))
    return Plan(
        ints=tuple(ints),
        texts=tuple(f for f, c in fields if isinstance(c.type, String)),
        keys=tuple(f for f, c in fields if isinstance(c.type, String) and c.name in indexed),
        jsons=tuple(f for f, c in fields if isinstance(c.type, JSONB)),
    )


#: Per kind of record (:data:`sinks.base.KINDS`), what to check.
PLANS = {
    "doubles": plan(citizen_profiles),
    "ledger": plan(score_ledger, skip={"explanation"}),  # the sink writes it
    "blacklist": plan(blacklist, {"version": "double_version"}),
}


def _shown(value: str) -> str:
    return repr(value[:40]) + ("…" if len(value) > 40 else "")


def _has_nul(value: Any) -> bool:
    """A NUL anywhere in a string, or in a map's keys and values, a list's items.

    Written for speed on the usual case, a dict of text keys and int values (an ABC
    ``isinstance(…, Mapping)`` alone would cost more than the rest).
    """
    if isinstance(value, dict):
        try:
            if "\x00" in "".join(value):  # one C-speed scan of the keys
                return True
        except TypeError:  # keys that are not all text
            if any(_has_nul(k) for k in value):
                return True
        return any(type(v) is not int and _has_nul(v) for v in value.values())
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def check(kind: str, record: Record, rules: Collection[str]) -> Refusal | None:
    """Why PostgreSQL would refuse ``record`` (a ``kind`` of :data:`sinks.base.KINDS`),
    or None; ``rules`` are the rule ids the ledger may name."""
    p = PLANS[kind]
    for field, low, high, sql in p.ints:
        value = record.get(field)
        if type(value) is int and not low <= value <= high:  # bool is no int here
            return Refusal(
                OUT_OF_RANGE, f"{field} = {value} is outside PostgreSQL {sql} ({low}..{high})"
            )
    for field in p.texts:
        value = record.get(field)
        if isinstance(value, str) and "\x00" in value:
            return Refusal(NUL_CHARACTER, f"{field} holds a NUL character ({_shown(value)})")
    for field in p.keys:
        value = record.get(field)
        if isinstance(value, str) and len(value) * 4 > KEY_BYTES_MAX:  # 4: UTF-8's most
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > KEY_BYTES_MAX:
                return Refusal(
                    TOO_LONG,
                    f"{field} is {size:,} bytes of UTF-8 ({_shown(value)}); "
                    f"the sink stores at most {KEY_BYTES_MAX}",
                )
    for field in p.jsons:
        if _has_nul(record.get(field)):
            return Refusal(NUL_CHARACTER, f"{field} holds a NUL character in a key or value")
    if kind == "ledger" and record.get("rule_id") not in rules:
        rule = str(record.get("rule_id"))
        return Refusal(UNKNOWN_RULE, f"rule {_shown(rule)} is not in the sink's rulebook")
    return None
