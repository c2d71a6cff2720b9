"""The PostgreSQL sink: upserts ``citizen_profiles`` with a version guard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.schema import CreateSchema

from sinks.base import Double, Sink, latest_per_citizen

metadata = MetaData()

citizen_profiles = Table(
    "citizen_profiles",
    metadata,
    Column("citizen_id", String, primary_key=True),
    Column("version", BigInteger, nullable=False, comment="Distinct events applied"),
    Column("score", Integer, nullable=False),
    Column("metro_count", Integer, nullable=False),
    Column("payment_count", Integer, nullable=False),
    Column("book_count", Integer, nullable=False),
    Column("camera_count", Integer, nullable=False),
    Column("first_seen", DateTime(timezone=True)),
    Column("last_seen", DateTime(timezone=True)),
    Column("rule_hits", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

PROFILE_FIELDS = (
    "citizen_id",
    "version",
    "score",
    "metro_count",
    "payment_count",
    "book_count",
    "camera_count",
    "first_seen",
    "last_seen",
    "rule_hits",
)


def to_row(double: Double) -> dict[str, Any]:
    return {f: double[f] for f in PROFILE_FIELDS}


def engine_for(url: str, schema: str = "public") -> Engine:
    """An engine for ``url`` whose tables live in ``schema``.

    A plain ``postgresql://`` URL means psycopg 3 in SQLAlchemy 2.1; it is spelled out
    so SQLAlchemy 2.0 picks the same driver.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url, pool_pre_ping=True)
    return engine.execution_options(schema_translate_map={None: schema})


class PostgresSink(Sink):
    """Writes doubles to ``citizen_profiles``; an older or replayed double is a no-op."""

    def __init__(self, url: str, schema: str = "public", create: bool = True) -> None:
        self.engine = engine_for(url, schema)
        if create:
            with self.engine.begin() as conn:
                conn.execute(CreateSchema(schema, if_not_exists=True))
                metadata.create_all(conn)

    def write(self, batch: Sequence[Double]) -> int:
        rows = [to_row(d) for d in latest_per_citizen(batch)]
        if not rows:
            return 0
        stmt = insert(citizen_profiles)
        stmt = stmt.on_conflict_do_update(
            index_elements=[citizen_profiles.c.citizen_id],
            set_={f: stmt.excluded[f] for f in PROFILE_FIELDS if f != "citizen_id"}
            | {"updated_at": func.now()},
            where=citizen_profiles.c.version < stmt.excluded.version,
        )
        with self.engine.begin() as conn:
            result = conn.execute(stmt, rows)
        return int(result.rowcount or 0)

    def profiles(self) -> dict[str, dict[str, Any]]:
        """Every stored profile by citizen id."""
        with self.engine.connect() as conn:
            return {
                r["citizen_id"]: dict(r) for r in conn.execute(select(citizen_profiles)).mappings()
            }

    def close(self) -> None:
        self.engine.dispose()
