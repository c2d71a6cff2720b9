"""The PostgreSQL sink: profiles, the score ledger and the blacklist, idempotently.

- ``citizen_profiles``: the double, upserted with a version guard, so an older or
  replayed double is a no-op;
- ``score_ledger``: append-only, one row per (event, rule), ``ON CONFLICT DO NOTHING``,
  from the ledger topic; the view ``score_ledger_explained`` adds the score before and
  after each entry;
- ``blacklist``: every period on the blacklist (open ones have no ``lifted_at``), from
  the blacklist topic: upserted when its ``version`` is newer, deleted when a late
  event removed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from psycopg.types.json import Jsonb
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
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.schema import CreateSchema

from processors.scoring import Rulebook, load_rules
from sinks.base import Double, Harvest, Record, Sink, latest_per_citizen

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
LEDGER_VIEW = """
CREATE OR REPLACE VIEW {schema}.score_ledger_explained AS
SELECT l.citizen_id, l.occurred_at, l.event_id, l.rule_id, l.delta, l.explanation,
       p.base_score + SUM(l.delta) OVER w - l.delta AS score_before,
       p.base_score + SUM(l.delta) OVER w AS score_after
FROM {schema}.score_ledger l JOIN {schema}.citizen_profiles p USING (citizen_id)
WINDOW w AS (PARTITION BY l.citizen_id ORDER BY l.occurred_at, l.event_id, l.rule_id
             ROWS UNBOUNDED PRECEDING)
"""


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
    """Writes doubles; an older or replayed double changes nothing."""

    def __init__(
        self,
        url: str,
        schema: str = "public",
        rules: Rulebook | None = None,
        create: bool = True,
    ) -> None:
        self.schema = schema
        self.engine = engine_for(url, schema)
        self.rules = rules or load_rules()
        self._explained: dict[str, str] = {}
        if create:
            with self.engine.begin() as conn:
                conn.execute(CreateSchema(schema, if_not_exists=True))
                metadata.create_all(conn)
                quoted = conn.dialect.identifier_preparer.quote_schema(schema)
                conn.execute(  # tables made before the blacklist topic existed
                    text(
                        f"ALTER TABLE {quoted}.blacklist"
                        " ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0"
                    )
                )
                conn.execute(text(LEDGER_VIEW.format(schema=quoted)))

    def write(self, batch: Harvest | Sequence[Double]) -> int:
        """Upsert the batch's latest profiles, append its ledger entries and apply its
        period updates, in one transaction; how many profiles advanced.

        Rows travel by COPY into session temp tables, then one set-based statement per
        table merges them (much cheaper than row-by-row parameter binding).
        """
        if not isinstance(batch, Harvest):
            batch = Harvest.of(batch)
        if not batch:
            return 0
        latest = latest_per_citizen(batch.doubles)
        s = self._schema_sql()
        with self.engine.begin() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cur:
                self._staging(cur, s)
                advanced: set[str] = set()
                if latest:
                    with cur.copy(f"COPY moisson_profiles_in ({PROFILE_COLUMNS}) FROM STDIN") as cp:
                        for d in latest:
                            cp.write_row(
                                [Jsonb(d[f]) if f in JSON_FIELDS else d[f] for f in PROFILE_FIELDS]
                            )
                    cur.execute(self._upsert_sql)
                    advanced = {row[0] for row in cur.fetchall()}
                if batch.ledger:
                    self._append_ledger(cur, s, batch.ledger)
                if batch.blacklist:
                    self._apply_periods(cur, s, batch.blacklist)
        return len(advanced)

    def _append_ledger(self, cur: Any, s: str, entries: Sequence[Record]) -> None:
        explanation = self._explanations
        with cur.copy(
            "COPY moisson_ledger_in (event_id, rule_id, citizen_id, occurred_at, delta,"
            " explanation) FROM STDIN"
        ) as cp:
            for e in entries:
                rid = e["rule_id"]
                row = (e["event_id"], rid, e["citizen_id"], e["occurred_at"], e["delta"])
                cp.write_row((*row, explanation(rid)))
        cur.execute(
            f"INSERT INTO {s}.score_ledger SELECT DISTINCT ON (event_id, rule_id) event_id,"
            " rule_id, citizen_id, occurred_at, delta, explanation FROM moisson_ledger_in"
            " ON CONFLICT DO NOTHING"
        )

    def _apply_periods(self, cur: Any, s: str, updates: Sequence[Record]) -> None:
        """The newest update of each period wins: an upsert, or a delete when removed."""
        newest: dict[tuple[str, Any], Record] = {}
        for u in updates:
            key = (u["citizen_id"], u["entered_at"])
            if key not in newest or u["double_version"] >= newest[key]["double_version"]:
                newest[key] = u
        with cur.copy(
            "COPY moisson_periods_in (citizen_id, entered_at, lifted_at, score_at_entry,"
            " event_id, version, removed) FROM STDIN"
        ) as cp:
            for u in newest.values():
                cp.write_row(
                    (
                        u["citizen_id"],
                        u["entered_at"],
                        u["lifted_at"],
                        u["score_at_entry"],
                        u["event_id"],
                        u["double_version"],
                        u["removed"],
                    )
                )
        cur.execute(
            f"DELETE FROM {s}.blacklist b USING moisson_periods_in i"
            " WHERE i.removed AND b.citizen_id = i.citizen_id"
            " AND b.entered_at = i.entered_at AND b.version <= i.version"
        )
        cur.execute(
            f"INSERT INTO {s}.blacklist (citizen_id, entered_at, lifted_at, score_at_entry,"
            " event_id, version) SELECT citizen_id, entered_at, lifted_at, score_at_entry,"
            " event_id, version FROM moisson_periods_in WHERE NOT removed"
            " ON CONFLICT (citizen_id, entered_at) DO UPDATE SET lifted_at = EXCLUDED.lifted_at,"
            " score_at_entry = EXCLUDED.score_at_entry, event_id = EXCLUDED.event_id,"
            f" version = EXCLUDED.version WHERE {s}.blacklist.version < EXCLUDED.version"
        )

    def _staging(self, cur: Any, s: str) -> None:
        """Per-session temp tables for COPY, emptied at every commit."""
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS moisson_profiles_in"
            f" (LIKE {s}.citizen_profiles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
            f" CREATE TEMP TABLE IF NOT EXISTS moisson_ledger_in"
            f" (LIKE {s}.score_ledger) ON COMMIT DELETE ROWS;"
            f" CREATE TEMP TABLE IF NOT EXISTS moisson_periods_in"
            f" (LIKE {s}.blacklist, removed boolean) ON COMMIT DELETE ROWS"
        )

    @cached_property
    def _upsert_sql(self) -> str:
        s = self._schema_sql()
        updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in PROFILE_FIELDS if f != "citizen_id")
        return (
            f"INSERT INTO {s}.citizen_profiles ({PROFILE_COLUMNS}, updated_at)"
            f" SELECT {PROFILE_COLUMNS}, now() FROM moisson_profiles_in"
            f" ON CONFLICT (citizen_id) DO UPDATE SET {updates}, updated_at = now()"
            f" WHERE {s}.citizen_profiles.version < EXCLUDED.version"
            " RETURNING citizen_id"
        )

    def _explanations(self, rule_id: str) -> str:
        got = self._explained.get(rule_id)
        if got is None:
            got = self._explained[rule_id] = self.rules.rule(rule_id).explanation
        return got

    def register(self, people: Sequence[Any]) -> None:
        """Upsert the real-name registry (id → name, districts, persona)."""
        rows = [
            {
                "citizen_id": p.id,
                "name": p.name,
                "home_district": p.home_district,
                "work_district": p.work_district,
                "persona": p.persona,
            }
            for p in people
        ]
        if not rows:
            return
        ins = insert(citizens)
        stmt = ins.on_conflict_do_update(
            index_elements=[citizens.c.citizen_id],
            set_={
                c: ins.excluded[c] for c in ("name", "home_district", "work_district", "persona")
            },
        )
        with self.engine.begin() as conn:
            for i in range(0, len(rows), 5000):
                conn.execute(stmt, rows[i : i + 5000])

    def profiles(self, ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Stored profiles by citizen id: all of them, or those in ``ids``."""
        q = select(citizen_profiles)
        if ids is not None:
            q = q.where(citizen_profiles.c.citizen_id.in_(list(ids)))
        with self.engine.connect() as conn:
            return {r["citizen_id"]: dict(r) for r in conn.execute(q).mappings()}

    def ledger(self, citizen_id: str | None = None) -> list[dict[str, Any]]:
        """Ledger rows with score before and after, in event time."""
        sql = f"SELECT * FROM {self._schema_sql()}.score_ledger_explained"
        params = {}
        if citizen_id is not None:
            sql += " WHERE citizen_id = :cid"
            params["cid"] = citizen_id
        sql += " ORDER BY citizen_id, occurred_at, event_id, rule_id"
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]

    def blacklist_rows(self, citizen_id: str | None = None) -> list[dict[str, Any]]:
        """Blacklist periods, by citizen then time: everyone's, or one citizen's."""
        q = select(blacklist).order_by(blacklist.c.citizen_id, blacklist.c.entered_at)
        if citizen_id is not None:
            q = q.where(blacklist.c.citizen_id == citizen_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def _schema_sql(self) -> str:
        return self.engine.dialect.identifier_preparer.quote_schema(self.schema)

    def reset(self) -> None:
        """Forget pooled connections: after a restart of PostgreSQL they are all dead."""
        self.engine.dispose()

    def close(self) -> None:
        self.engine.dispose()
