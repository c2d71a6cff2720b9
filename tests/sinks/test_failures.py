"""Which failed writes the sink retries, and what it refuses before PostgreSQL does."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors as pge
from sqlalchemy import exc as sa

from processors.core.fold import fold_all, new_double
from processors.core.scoring import load_rules
from sinks.base import Sink, SinkBatch
from sinks.postgres import checks, errors
from tests.factories import ev

RULES = frozenset(r.id for r in (*load_rules().rules, *load_rules().correlations))


def pg_error(code: str, message: str = "boom") -> psycopg.Error:
    """The psycopg exception PostgreSQL's ``code`` raises."""
    return pge.lookup(code)(message)


def wrapped(cause: BaseException, invalidated: bool = False) -> sa.DBAPIError:
    """``cause`` as SQLAlchemy raises it from ``Connection.execute``."""
    return sa.DBAPIError.instance(
        "INSERT …", {}, cause, psycopg.Error, connection_invalidated=invalidated
    )


@pytest.mark.parametrize(
    "code",
    ["08006", "08001", "40001", "40P01", "57P01", "57014", "53300", "55P03", "25006", "42P01"],
)
def test_a_database_away_or_busy_is_retried(code):
    assert errors.is_transient(pg_error(code))
    assert errors.is_transient(wrapped(pg_error(code)))


@pytest.mark.parametrize(
    ("code", "what"),
    [
        ("22003", "integer out of range"),
        ("22001", "string too long"),
        ("22021", "character not in repertoire"),
        ("22P05", "untranslatable character (a NUL in JSONB)"),
        ("23505", "unique violation"),
        ("23514", "check violation"),
        ("54000", "index row size exceeds the btree maximum"),
    ],
)
def test_a_refused_record_is_not_retried(code, what):
    exc = pg_error(code, what)
    assert not errors.is_transient(exc)
    assert not errors.is_transient(wrapped(exc))
    refusal = errors.refusal(wrapped(exc))
    assert refusal.reason == "database-refused"
    assert refusal.detail == f"SQLSTATE {code}: {what}"


def test_the_sqlstate_decides_not_the_exception_class():
    """psycopg raises an over-long index row as an OperationalError, like a lost
    connection: retrying every OperationalError would retry it forever."""
    too_long = pg_error("54000")
    assert isinstance(too_long, psycopg.OperationalError)
    assert not errors.is_transient(too_long)
    assert errors.is_transient(pg_error("40001"))  # also an OperationalError


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("consuming input failed: server closed the connection"),
        psycopg.InterfaceError("the connection is closed"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        sa.TimeoutError("QueuePool limit reached"),
        wrapped(psycopg.OperationalError("connection refused")),
        wrapped(pg_error("22003"), invalidated=True),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_lost_connection_without_sqlstate_is_retried(exc):
    assert errors.is_transient(exc)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (KeyError("nope"), "write-error"),
        (OverflowError("int too big to convert"), "write-error"),
        (ValueError("bad"), "write-error"),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), None),
    ],
    ids=lambda e: type(e).__name__,
)
def test_anything_else_points_at_a_record(exc, reason):
    assert not errors.is_transient(exc)
    got = errors.refusal(exc)
    assert got.reason == (reason or "database-refused")
    assert type(exc).__name__ in got.detail or got.detail.startswith("SQLSTATE -: PostgreSQL")


def test_a_sink_retries_only_os_errors_unless_it_says_otherwise():
    class Plain(Sink):
        def write(self, batch):
            return 0

    s = Plain()
    assert s.is_transient(ConnectionResetError()) and s.is_transient(TimeoutError())
    assert not s.is_transient(KeyError("x"))
    assert s.refuse("doubles", {}) is None
    assert s.refusal(KeyError("x")).reason == "write-error"


# What PostgreSQL would refuse, refused first


def a_double(**fields):
    events = [ev("metro"), ev("payment", hours=1, category="FINES"), ev("book", hours=2)]
    d = fold_all([*events, ev("camera", hours=3, behaviour="GATHERING")])["c0000001"]
    d.update(fields)
    return d


def check(kind, record):
    return checks.check(kind, record, RULES)


def test_the_processors_own_records_pass():
    d = a_double()
    h = SinkBatch.of([d])
    assert h.ledger and check("doubles", d) is None
    assert all(check("ledger", e) is None for e in h.ledger)
    period = {
        "citizen_id": "c0000001",
        "entered_at": datetime(2026, 3, 2, tzinfo=UTC),
        "lifted_at": None,
        "score_at_entry": 340,
        "event_id": "e1",
        "removed": False,
        "double_version": 12,
    }
    assert check("blacklist", period) is None


@pytest.mark.parametrize(
    ("kind", "field", "ok", "refused"),
    [
        ("doubles", "score", 2**31 - 1, 2**31),
        ("doubles", "metro_count", -(2**31), -(2**31) - 1),
        ("doubles", "version", 2**63 - 1, 2**63),
        ("ledger", "delta", -(2**31), 2**40),
        ("blacklist", "score_at_entry", 2**31 - 1, 2**35),
        ("blacklist", "double_version", 2**63 - 1, -(2**63) - 1),
    ],
)
def test_ints_must_fit_their_column(kind, field, ok, refused):
    base = {
        "doubles": a_double(),
        "ledger": SinkBatch.of([a_double()]).ledger[0],
        "blacklist": {
            "citizen_id": "c1",
            "entered_at": datetime(2026, 3, 2, tzinfo=UTC),
            "score_at_entry": 300,
            "event_id": "e",
            "removed": False,
            "double_version": 3,
        },
    }[kind]
    assert check(kind, {**base, field: ok}) is None
    got = check(kind, {**base, field: refused})
    assert got is not None and got.reason == "out-of-range"
    assert field in got.detail and str(refused) in got.detail


def test_an_id_longer_than_the_cap_is_refused_in_utf8_bytes():
    cap = checks.KEY_BYTES_MAX
    assert check("doubles", a_double(citizen_id="c" * cap)) is None
    got = check("doubles", a_double(citizen_id="c" * (cap + 1)))
    assert got is not None and got.reason == "too-long" and f"{cap + 1:,} bytes" in got.detail
    euro = "€"  # three bytes of UTF-8
    assert check("doubles", a_double(citizen_id=euro * (cap // 3))) is None
    got = check("doubles", a_double(citizen_id=euro * (cap // 3 + 1)))
    assert got is not None and got.reason == "too-long"
    entry = SinkBatch.of([a_double()]).ledger[0]
    got = check("ledger", {**entry, "event_id": "e" * 3000})
    assert got is not None and got.reason == "too-long" and "event_id" in got.detail


def test_the_capped_ids_are_the_indexed_text_columns():
    """The cap follows the tables: every key or indexed text column, in each table."""
    assert checks.PLANS["doubles"].keys == ("citizen_id",)
    assert set(checks.PLANS["ledger"].keys) == {"event_id", "rule_id", "citizen_id"}
    assert checks.PLANS["blacklist"].keys == ("citizen_id",)
    assert "explanation" not in checks.PLANS["ledger"].texts
    assert ("double_version", -(2**63), 2**63 - 1, "BIGINT") in checks.PLANS["blacklist"].ints


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("doubles", {"tier": "CITIZEN\x00"}),
        ("doubles", {"citizen_id": "c\x001"}),
        ("doubles", {"books": {"Title\x00": 1}}),
        ("doubles", {"associates": {"c2": 1, "c3\x00": 2}}),
    ],
)
def test_a_nul_character_is_refused(kind, change):
    got = check(kind, a_double(**change))
    assert got is not None and got.reason == "nul-character"
    assert next(iter(change)) in got.detail


def test_a_ledger_entry_must_name_a_known_rule():
    entry = SinkBatch.of([a_double()]).ledger[0]
    got = check("ledger", {**entry, "rule_id": "metro.made-up"})
    assert got is not None and got.reason == "unknown-rule" and "metro.made-up" in got.detail


def test_booleans_are_not_ints():
    assert check("doubles", {**new_double("c1"), "blacklisted": True}) is None
