"""Erasure you can see: the room's topics and rows deleted, then looked for again.

"Erase the room" deletes every topic of the session (its own prefix, and the
processor's internal topics named after its app id) and every row of its database
schema, then asks the broker and the database afresh: what it reports is what they
hold afterwards. A student erasing themselves deletes their rows at once; their raw
sensor events stay in the session's topics until the room is erased (Kafka cannot
delete single records from a topic that is not compacted), and the phone says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from moisson.settings import Settings


@dataclass
class Erasure:
    """What an erasure deleted, and what was found afterwards."""

    rows_deleted: dict[str, int] = field(default_factory=dict)
    rows_left: dict[str, int] = field(default_factory=dict)
    topics_deleted: list[str] = field(default_factory=list)
    topics_left: list[str] = field(default_factory=list)
    schema: str = ""
    schema_dropped: bool = False
    seconds: float = 0.0

    @property
    def nothing_left(self) -> bool:
        return not self.topics_left and not any(self.rows_left.values())

    def json(self) -> dict[str, Any]:
        return {**self.__dict__, "nothing_left": self.nothing_left}


def session_topics(settings: Settings, names: list[str]) -> list[str]:
    """Among ``names``, the session's topics: its prefix's and its processor's own."""
    mine = (settings.topics.prefix, f"{settings.processor.app_id}-")
    return sorted(n for n in names if n.startswith(mine))


def listed_topics(settings: Settings) -> list[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        return session_topics(settings, list(admin.list_topics()))
    finally:
        admin.close()


def erase_room(settings: Settings, settle_s: float = 2.0) -> Erasure:
    """Delete the session's topics and rows; count both again after ``settle_s``
    seconds (a client still running could have made a topic again)."""
    from kafka import KafkaAdminClient

    from sinks.postgres import erase
    from sinks.postgres.tables import engine_for

    started = time.monotonic()
    report = Erasure(schema=settings.database.schema_name)
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        report.topics_deleted = session_topics(settings, list(admin.list_topics()))
        if report.topics_deleted:
            admin.delete_topics(report.topics_deleted)
    finally:
        admin.close()
    engine = engine_for(settings.database.sqlalchemy_url(), report.schema)
    try:
        report.rows_deleted = erase.erase(engine)
        report.rows_left = erase.rows(engine)
        report.schema_dropped = erase.drop_schema(engine, report.schema)
    finally:
        engine.dispose()
    deadline = time.monotonic() + 30
    while True:  # deletion is asynchronous on the broker
        time.sleep(min(settle_s, 0.5))
        report.topics_left = listed_topics(settings)
        if not report.topics_left or time.monotonic() > deadline:
            break
    time.sleep(settle_s)
    report.topics_left = listed_topics(settings)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def erase_student(settings: Settings, cid: str) -> Erasure:
    """Delete ``cid``'s rows; count them again."""
    from sinks.postgres import erase
    from sinks.postgres.tables import engine_for

    started = time.monotonic()
    engine = engine_for(settings.database.sqlalchemy_url(), settings.database.schema_name)
    try:
        report = Erasure(schema=settings.database.schema_name)
        report.rows_deleted = erase.erase(engine, [cid])
        report.rows_left = erase.rows(engine, [cid])
    finally:
        engine.dispose()
    report.seconds = round(time.monotonic() - started, 2)
    return report
