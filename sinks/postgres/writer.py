"""The PostgreSQL writer: a :class:`~sinks.base.Sink` that merges each batch in one
transaction (COPY into session temp tables, then one set-based statement per table),
and registers citizens (the real-name registry). Reads: ``sinks.postgres.reader``.
What it refuses before writing: ``sinks.postgres.checks``; which failures it retries:
``sinks.postgres.errors``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import insert

from processors.core.scoring import Rulebook, load_rules
from sinks.base import Double, Record, Refusal, Sink, SinkBatch, latest_per_citizen
from sinks.postgres import checks, errors
from sinks.postgres.tables import (
    JSON_FIELDS,
    PROFILE_COLUMNS,
    PROFILE_FIELDS,
    citizens,
    create_tables,
    engine_for,
    quoted_schema,
    upsert_profiles_sql,
)


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
        self._rule_ids = frozenset(r.id for r in (*self.rules.rules, *self.rules.correlations))
        if create:
            create_tables(self.engine, schema, self.rules)

    def write(self, batch: SinkBatch | Sequence[Double]) -> int:
        """Upsert the batch's latest profiles, append its ledger entries and apply its
        period updates, in one transaction; how many profiles advanced.

        Rows travel by COPY into session temp tables, then one set-based statement per
        table merges them (much cheaper than row-by-row parameter binding).
        """
        if not isinstance(batch, SinkBatch):
            batch = SinkBatch.of(batch)
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
        return upsert_profiles_sql(self._schema_sql())

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

    def _schema_sql(self) -> str:
        return quoted_schema(self.engine, self.schema)

    def refuse(self, kind: str, record: Record) -> Refusal | None:
        """What PostgreSQL would refuse (:func:`sinks.postgres.checks.check`)."""
        return checks.check(kind, record, self._rule_ids)

    def is_transient(self, exc: BaseException) -> bool:
        return errors.is_transient(exc)

    def refusal(self, exc: BaseException) -> Refusal:
        return errors.refusal(exc)

    def reset(self) -> None:
        """Forget pooled connections: after a restart of PostgreSQL they are all dead."""
        self.engine.dispose()

    def close(self) -> None:
        self.engine.dispose()
