"""Erasure: every row about some citizens (or all of them), deleted and then counted.

The count is a fresh query after the delete has committed, so what it shows is what a
reader of the database would find, not what the delete reported.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Engine, delete, func, select, text

from sinks.postgres.tables import blacklist, citizen_profiles, citizens, score_ledger

#: Every table that holds rows about a citizen, each keyed by ``citizen_id``.
TABLES = (citizen_profiles, score_ledger, blacklist, citizens)


def erase(engine: Engine, ids: Collection[str] | None = None) -> dict[str, int]:
    """Delete the rows of ``ids`` (every row when None) from each table, in one
    transaction; the rows deleted per table."""
    deleted = {}
    with engine.begin() as conn:
        for table in TABLES:
            stmt = delete(table)
            if ids is not None:
                stmt = stmt.where(table.c.citizen_id.in_(list(ids)))
            deleted[table.name] = conn.execute(stmt).rowcount
    return deleted


def rows(engine: Engine, ids: Collection[str] | None = None) -> dict[str, int]:
    """The rows each table holds about ``ids`` (about anyone when None)."""
    counts = {}
    with engine.connect() as conn:
        for table in TABLES:
            stmt = select(func.count()).select_from(table)
            if ids is not None:
                stmt = stmt.where(table.c.citizen_id.in_(list(ids)))
            counts[table.name] = int(conn.execute(stmt).scalar_one())
    return counts


def drop_schema(engine: Engine, schema: str) -> bool:
    """Drop ``schema`` and all it holds; whether it is gone (asked again afterwards)."""
    quoted = engine.dialect.identifier_preparer.quote_schema(schema)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {quoted} CASCADE"))
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"),
            {"s": schema},
        ).scalar_one()
    return found == 0
