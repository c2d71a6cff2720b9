"""The sink's PostgreSQL tables: their definitions, their creation, the version guard.

- ``citizen_profiles``: the double, upserted with a version guard, so an older or
  replayed double is a no-op;
- ``score_ledger``: append-only, one row per (event, rule), ``ON CONFLICT DO NOTHING``,
  from the ledger topic, with each entry's nominal delta; the view
  ``score_ledger_explained`` adds the score before and after each entry, walked in
  event time and clamped to the rules' scale (the aggregate ``moisson_walk``);
- ``blacklist``: every period on the blacklist (open ones have no ``lifted_at``), from
  the blacklist topic: upserted when its ``version`` is newer, deleted when a late
  event removed it;
- ``citizens``: the real-name registry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateSchema

from processors.core.scoring import Rulebook, load_rules
from sinks.base import Double

metadata = MetaData()

citizen_profiles = Table(
    "citizen_profiles",
    metadata,
    Column("citizen_id", String, primary_key=True),
    Column("version", BigInteger, nullable=False, comment="Distinct events applied"),
    Column("base_score", Integer, nullable=False),
    Column("score", Integer, nullable=False),
    Column("tier", String, nullable=False),
    Column("blacklisted", Boolean, nullable=False),
    Column("metro_count", Integer, nullable=False),
    Column("payment_count", Integer, nullable=False),
    Column("book_count", Integer, nullable=False),
    Column("camera_count", Integer, nullable=False),
    Column("denied_count", Integer, nullable=False),
    Column("first_seen", DateTime(timezone=True)),
    Column("last_seen", DateTime(timezone=True)),
    Column("places", JSONB, nullable=False),
    Column("purchases", JSONB, nullable=False),
    Column("books", JSONB, nullable=False),
    Column("sightings", JSONB, nullable=False),
    Column("associates", JSONB, nullable=False),
    Column("rule_hits", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

score_ledger = Table(
    "score_ledger",
    metadata,
    Column("event_id", String, primary_key=True),
    Column("rule_id", String, primary_key=True),
    Column("citizen_id", String, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("delta", Integer, nullable=False),
    Column("explanation", String, nullable=False),
    Index("score_ledger_by_citizen", "citizen_id", "occurred_at"),
)

blacklist = Table(
    "blacklist",
    metadata,
    Column("citizen_id", String, primary_key=True),
    Column("entered_at", DateTime(timezone=True), primary_key=True),
    Column("lifted_at", DateTime(timezone=True)),
    Column("score_at_entry", Integer, nullable=False),
    Column("event_id", String, nullable=False),
    Column("version", BigInteger, nullable=False, comment="The double's version that said so"),
)

citizens = Table(
    "citizens",
    metadata,
    Column("citizen_id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("home_district", String, nullable=False),
    Column("work_district", String, nullable=False),
    Column("persona", String, nullable=False),
    comment="The real-name registry: who each id is (written by the sensors' operator).",
)

PROFILE_FIELDS = tuple(c.name for c in citizen_profiles.columns if c.name != "updated_at")
PROFILE_COLUMNS = ", ".join(PROFILE_FIELDS)
JSON_FIELDS = frozenset(c.name for c in citizen_profiles.columns if isinstance(c.type, JSONB))
#: One step of the event-time walk, clamped to the scale: the SQL twin of
#: ``processors.core.fold.walk``. As a window aggregate it walks a citizen's ledger in order.
WALK_FUNCTIONS = """
CREATE OR REPLACE FUNCTION {schema}.moisson_walk_step(
    state integer, delta integer, start integer, low integer, high integer)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT LEAST(high, GREATEST(low, COALESCE(state, start) + delta)) $$;
CREATE OR REPLACE AGGREGATE {schema}.moisson_walk(integer, integer, integer, integer) (
    SFUNC = {schema}.moisson_walk_step, STYPE = integer);
"""
#: The ledger with the walked score before and after each entry. A window SUM cannot
#: clamp, so the walk is an aggregate; ids sort byte-wise ("C"), as Python sorts them.
LEDGER_VIEW = """
DROP VIEW IF EXISTS {schema}.score_ledger_explained;
CREATE VIEW {schema}.score_ledger_explained AS
SELECT citizen_id, occurred_at, event_id, rule_id, delta, explanation,
       COALESCE(LAG(score_after) OVER w, base_score) AS score_before, score_after
FROM (
    SELECT l.citizen_id, l.occurred_at, l.event_id, l.rule_id, l.delta, l.explanation,
           p.base_score,
           {schema}.moisson_walk(l.delta, p.base_score, {low}, {high}) OVER w AS score_after
    FROM {schema}.score_ledger l JOIN {schema}.citizen_profiles p USING (citizen_id)
    WINDOW w AS (PARTITION BY l.citizen_id
                 ORDER BY l.occurred_at, l.event_id COLLATE "C", l.rule_id COLLATE "C"
                 ROWS UNBOUNDED PRECEDING)
) walked
WINDOW w AS (PARTITION BY citizen_id
             ORDER BY occurred_at, event_id COLLATE "C", rule_id COLLATE "C")
"""


def to_row(double: Double) -> dict[str, Any]:
    return {f: double[f] for f in PROFILE_FIELDS}


class UnsupportedDatabase(RuntimeError):
    """The database cannot hold moisson's tables as they are; ``fix`` says what to do."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def engine_for(url: str, schema: str = "public") -> Engine:
    """An engine for ``url`` whose tables live in ``schema``.

    A plain ``postgresql://`` URL means psycopg 3 in SQLAlchemy 2.1; it is spelled out
    so SQLAlchemy 2.0 picks the same driver. The client encoding is UTF-8 whatever the
    database's: on a SQL_ASCII database psycopg would otherwise return bytes, and
    SQLAlchemy's first connect fail with a TypeError before create_tables can say why.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_pre_ping=True, connect_args={"client_encoding": "utf8"})
    return engine.execution_options(schema_translate_map={None: schema})


def quoted_schema(engine: Engine, schema: str) -> str:
    """``schema`` quoted for SQL text."""
    return engine.dialect.identifier_preparer.quote_schema(schema)


def create_tables(engine: Engine, schema: str, rules: Rulebook | None = None) -> None:
    """Create the schema, the tables and the ledger view if missing (idempotent); the
    view walks scores on the scale of ``rules`` (the shipped ones by default)."""
    rules = rules or load_rules()
    with engine.begin() as conn:
        encoding = conn.execute(text("SHOW server_encoding")).scalar_one()
        if encoding != "UTF8":
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            raise UnsupportedDatabase(
                f"PostgreSQL database {name!r} is encoded {encoding}: moisson keeps names "
                "such as 露露 and needs UTF8 (a database made by initdb in the C locale is "
                "SQL_ASCII)",
                f"create it as UTF8: CREATE DATABASE \"{name}\" ENCODING 'UTF8' "
                "TEMPLATE template0 (or initdb --encoding=UTF8)",
            )
        # The sink and the dashboard may both start at once: one creates, then the other.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('moisson.create_tables'))"))
        conn.execute(CreateSchema(schema, if_not_exists=True))
        metadata.create_all(conn)
        quoted = conn.dialect.identifier_preparer.quote_schema(schema)
        conn.execute(  # tables made before the blacklist topic existed
            text(
                f"ALTER TABLE {quoted}.blacklist"
                " ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0"
            )
        )
        conn.execute(text(WALK_FUNCTIONS.format(schema=quoted)))
        low, high = int(rules.score_min), int(rules.score_max)
        conn.execute(text(LEDGER_VIEW.format(schema=quoted, low=low, high=high)))


def upsert_profiles_sql(s: str) -> str:
    """The version guard: merge the staged profiles into ``{s}.citizen_profiles``, a row
    advancing only to a higher version; returns the ids that advanced."""
    updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in PROFILE_FIELDS if f != "citizen_id")
    return (
        f"INSERT INTO {s}.citizen_profiles ({PROFILE_COLUMNS}, updated_at)"
        f" SELECT {PROFILE_COLUMNS}, now() FROM moisson_profiles_in"
        f" ON CONFLICT (citizen_id) DO UPDATE SET {updates}, updated_at = now()"
        f" WHERE {s}.citizen_profiles.version < EXCLUDED.version"
        " RETURNING citizen_id"
    )
