"""Every read of the sink's tables, for the CLI, ``moisson verify`` and the dashboard.

A :class:`PostgresReader` never creates or writes anything: the writer
(``sinks.postgres.writer.PostgresSink``) owns the tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, text

from sinks.postgres.tables import (
    blacklist,
    citizen_profiles,
    citizens,
    engine_for,
    quoted_schema,
)


class PostgresReader:
    """Reads profiles, the ledger, the blacklist and the name registry of one schema."""

    def __init__(self, url: str, schema: str = "public") -> None:
        self.schema = schema
        self.engine = engine_for(url, schema)

    def profiles(self, ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Stored profiles by citizen id: all of them, or those in ``ids``."""
        q = select(citizen_profiles)
        if ids is not None:
            q = q.where(citizen_profiles.c.citizen_id.in_(list(ids)))
        with self.engine.connect() as conn:
            return {r["citizen_id"]: dict(r) for r in conn.execute(q).mappings()}

    def versions(self) -> dict[str, int]:
        """Each stored profile's version (how many distinct events it applied)."""
        q = select(citizen_profiles.c.citizen_id, citizen_profiles.c.version)
        with self.engine.connect() as conn:
            return {r.citizen_id: int(r.version) for r in conn.execute(q)}

    def ledger(self, citizen_id: str | None = None) -> list[dict[str, Any]]:
        """Ledger rows with score before and after, in event time."""
        sql = f"SELECT * FROM {quoted_schema(self.engine, self.schema)}.score_ledger_explained"
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

    def blacklisted_now(self) -> list[dict[str, Any]]:
        """The citizens on the blacklist now, lowest score first: id, score and since when."""
        q = (
            select(
                citizen_profiles.c.citizen_id,
                citizen_profiles.c.score,
                func.max(blacklist.c.entered_at).label("since"),
            )
            .join(blacklist, blacklist.c.citizen_id == citizen_profiles.c.citizen_id)
            .where(citizen_profiles.c.blacklisted, blacklist.c.lifted_at.is_(None))
            .group_by(citizen_profiles.c.citizen_id, citizen_profiles.c.score)
            .order_by(citizen_profiles.c.score)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def scores(self) -> list[int]:
        """Every stored profile's score."""
        with self.engine.connect() as conn:
            return [r.score for r in conn.execute(select(citizen_profiles.c.score))]

    def score_histogram(self, width: int = 25) -> tuple[int, dict[int, int]]:
        """(how many profiles, profiles per score bin of ``width`` by the bin's start)."""
        scores = self.scores()
        bins = Counter((s // width) * width for s in scores)
        return len(scores), {b: bins[b] for b in sorted(bins)}

    def names(self, ids: Sequence[str]) -> dict[str, str]:
        """The registered names of ``ids`` (those the registry knows)."""
        if not ids:
            return {}
        q = select(citizens.c.citizen_id, citizens.c.name).where(
            citizens.c.citizen_id.in_(list(ids))
        )
        with self.engine.connect() as conn:
            return {r.citizen_id: r.name for r in conn.execute(q)}

    def named_profiles(self) -> int:
        """How many stored profiles the name registry puts a name on."""
        q = (
            select(func.count())
            .select_from(citizen_profiles)
            .join(citizens, citizens.c.citizen_id == citizen_profiles.c.citizen_id)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def blacklisted_count(self) -> int:
        """How many citizens are on the blacklist now (the metrics' gauge)."""
        q = select(func.count()).select_from(citizen_profiles).where(citizen_profiles.c.blacklisted)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def search(self, q: str, limit: int = 20) -> list[dict[str, Any]]:
        """Registered citizens whose name or id contains ``q``, with their score if any."""
        like = f"%{q}%"
        stmt = (
            select(citizens.c.citizen_id, citizens.c.name, citizen_profiles.c.score)
            .join(
                citizen_profiles,
                citizen_profiles.c.citizen_id == citizens.c.citizen_id,
                isouter=True,
            )
            .where(or_(citizens.c.name.ilike(like), citizens.c.citizen_id.ilike(like)))
            .order_by(citizens.c.citizen_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                {"id": r.citizen_id, "name": r.name, "score": r.score} for r in conn.execute(stmt)
            ]

    def reset(self) -> None:
        """Forget pooled connections: after a restart of PostgreSQL they are all dead."""
        self.engine.dispose()

    def close(self) -> None:
        self.engine.dispose()
