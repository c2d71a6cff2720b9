"""`moisson verify`: the offline oracle's answer for a recording, against PostgreSQL
and against the ``sanctions`` topic."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moisson.ops.read_to_end import IDLE_S, read_to_end
from moisson.ops.recording import Recording, partition_for
from moisson.settings import Settings
from processors.core.fold import Double, explained_ledger
from processors.core.oracle import Oracle
from processors.core.planning import Incoming, Plan
from processors.core.scoring import Rulebook
from producers.sanction_book import Sanction, SanctionBook
from schemas.codec import IdResolver
from sinks.postgres.reader import PostgresReader
from sinks.postgres.tables import PROFILE_FIELDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Diff:
    citizen: str
    field: str
    expected: Any
    actual: Any


def received(rec: Recording, partitions: int | None = None) -> list[Incoming]:
    """What a replay of ``rec`` delivers, as the processor's partitions receive it.

    ``replay`` sends in recorded timestamp order and keeps each message's partition when
    the destination has the recorded partition count, else Kafka's partitioner places
    it by key (``partitions``: the destination count; None keeps them all). Each
    destination partition's own order is what its watermark, and so lateness, follows.
    """
    offsets: dict[tuple[str, int], int] = {}
    out: list[Incoming] = []
    for m in rec.all_messages():
        if rec.kind_of(m.topic) is None:
            continue
        part = m.partition
        if partitions is not None and partitions != rec.topics[m.topic]["partitions"]:
            part = partition_for(m.key, partitions) if m.key is not None else 0
        offset = offsets.get((m.topic, part), 0)
        offsets[(m.topic, part)] = offset + 1
        out.append(Incoming(m.topic, part, offset, m.key, m.value))
    return out


def recorded_kinds(rec: Recording) -> dict[str, str]:
    """Topic -> the sensor kind it carries, for the recording's sensor topics."""
    return {t: k for t in rec.topics if (k := rec.kind_of(t)) is not None}


def expected_plan(
    rec: Recording,
    rules: Rulebook | None = None,
    lateness_s: float | None = None,
    partitions: int | None = None,
    resolver: IdResolver | None = None,
    check_partition: bool = True,
) -> Plan:
    """The oracle's plan for everything a replay of ``rec`` delivers
    (:meth:`processors.core.oracle.Oracle.expected_plan`); with ``check_partition`` (the
    worker's ``PROCESSOR_CHECK_PARTITION``), a message off its key's partition is
    refused as the worker refuses it."""
    return Oracle(rules).expected_plan(
        received(rec, partitions),
        recorded_kinds(rec),
        lateness_s,
        resolver,
        *_partition_check(rec, partitions, check_partition),
    )


def expected_doubles(
    rec: Recording,
    rules: Rulebook | None = None,
    lateness_s: float | None = None,
    partitions: int | None = None,
    resolver: IdResolver | None = None,
    check_partition: bool = True,
) -> dict[str, Double]:
    """The doubles the pipeline must end with after a replay of ``rec``
    (``resolver``: for a recording of Confluent-framed sensor messages)."""
    return Oracle(rules).expected_doubles(
        received(rec, partitions),
        recorded_kinds(rec),
        lateness_s,
        resolver,
        *_partition_check(rec, partitions, check_partition),
    )


def _partition_check(
    rec: Recording, partitions: int | None, check: bool
) -> tuple[Callable[[bytes, int], int] | None, Callable[[str], int | None]]:
    """The worker's partition check over what a replay of ``rec`` delivers: each topic
    has ``partitions`` partitions, or its recorded count."""
    if not check:
        return None, lambda topic: None
    return partition_for, lambda topic: partitions or rec.topics[topic]["partitions"]


def _ledger_rows(double: Double, rules: Rulebook | None) -> dict[tuple[str, str], tuple]:
    return {
        (e["event_id"], e["rule_id"]): (
            e["occurred_at"],
            e["delta"],
            e["score_before"],
            e["score_after"],
        )
        for e in explained_ledger(double, rules)
    }


def compare(
    expected: dict[str, Double], pg: PostgresReader, rules: Rulebook | None = None
) -> list[Diff]:
    """Every difference between the oracle and PostgreSQL, citizen by citizen."""
    diffs: list[Diff] = []
    profiles = pg.profiles()
    for cid in sorted(set(expected) | set(profiles)):
        want, got = expected.get(cid), profiles.get(cid)
        if want is None or got is None:
            diffs.append(
                Diff(
                    cid, "profile", "present" if want else "absent", "present" if got else "absent"
                )
            )
            continue
        diffs += [Diff(cid, f, want[f], got[f]) for f in PROFILE_FIELDS if want[f] != got[f]]
    ledger: dict[str, dict[tuple[str, str], tuple]] = {}
    for r in pg.ledger():
        ledger.setdefault(r["citizen_id"], {})[(r["event_id"], r["rule_id"])] = (
            r["occurred_at"],
            r["delta"],
            r["score_before"],
            r["score_after"],
        )
    for cid in sorted(set(expected) | set(ledger)):
        want_l = _ledger_rows(expected[cid], rules) if cid in expected else {}
        got_l = ledger.get(cid, {})
        for key in sorted(set(want_l) | set(got_l)):
            if want_l.get(key) != got_l.get(key):
                diffs.append(
                    Diff(cid, f"ledger[{key[1]} @ {key[0][:8]}]", want_l.get(key), got_l.get(key))
                )
    periods: dict[str, list[tuple]] = {}
    for b in pg.blacklist_rows():
        periods.setdefault(b["citizen_id"], []).append(
            (b["entered_at"], b["lifted_at"], b["score_at_entry"])
        )
    for cid in sorted(set(expected) | set(periods)):
        want_p = [
            (p["entered_at"], p["lifted_at"], p["score_at_entry"])
            for p in (expected[cid]["blacklist"] if cid in expected else [])
        ]
        if want_p != periods.get(cid, []):
            diffs.append(Diff(cid, "blacklist", want_p, periods.get(cid, [])))
    return diffs


def _may_still_arrive(d: Diff) -> bool:
    """A ledger row not written yet, or a blacklist period behind: the ledger and the
    blacklist are streams of their own, so the sink may write them after the profile."""
    return (d.field.startswith("ledger[") and d.actual is None) or d.field == "blacklist"


def settle(
    expected: dict[str, Double],
    pg: PostgresReader,
    rules: Rulebook | None,
    deadline: float,
) -> list[Diff]:
    """:func:`compare`, repeated while the only differences are rows still in flight
    and ``deadline`` (monotonic) has not passed; any other difference ends it at once."""
    while True:
        diffs = compare(expected, pg, rules)
        if not diffs or not all(_may_still_arrive(d) for d in diffs):
            return diffs
        if time.monotonic() > deadline:
            return diffs
        time.sleep(0.5)


COUNTS = ("metro_count", "payment_count", "book_count", "camera_count")


@dataclass(frozen=True)
class Tally:
    """How many events PostgreSQL reflects against the oracle, per citizen and sensor kind.

    A profile counts the distinct events applied of each kind: fewer than the oracle
    means events were lost, more means an event was applied twice (a dedupe failed).
    """

    events: int
    stored: int
    lost: int
    duplicated: int


def tally(expected: dict[str, Double], profiles: dict[str, dict[str, Any]]) -> Tally:
    """Lost and twice-applied events, kind by kind, citizen by citizen."""
    lost = duplicated = events = stored = 0
    for cid in set(expected) | set(profiles):
        want, got = expected.get(cid), profiles.get(cid)
        for field in COUNTS:
            w = want[field] if want is not None else 0
            g = got[field] if got is not None else 0
            events += w
            stored += g
            lost += max(0, w - g)
            duplicated += max(0, g - w)
    return Tally(events, stored, lost, duplicated)


def caught_up(expected: dict[str, Double], pg: PostgresReader) -> tuple[int, int]:
    """(citizens whose stored version reached the oracle's, citizens expected).

    Tables that do not exist yet (the sink has not started) count as nothing stored.
    """
    from sqlalchemy.exc import ProgrammingError

    try:
        versions = pg.versions()
    except ProgrammingError:
        return 0, len(expected)
    done = sum(
        1 for cid, d in expected.items() if cid in versions and versions[cid] >= d["version"]
    )
    return done, len(expected)


def wait_caught_up(
    expected: dict[str, Double],
    pg: PostgresReader,
    timeout: float,
    progress: Callable[[int, int], None] | None = None,
) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        done, total = caught_up(expected, pg)
        if progress is not None:
            progress(done, total)
        if done >= total:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


# --- sanctions ---------------------------------------------------------------


def last_sanctions(
    settings: Settings, timeout: float = 60.0, idle_s: float = IDLE_S
) -> dict[str, Sanction]:
    """Per citizen, the sanction in force on the ``sanctions`` topic, read from its
    beginning to its end (no consumer group: nothing is committed).

    The end is not the one the broker reports alone: reading goes on until the topic
    has been idle for ``idle_s`` seconds past it (:func:`read_to_end`), since a broker
    may report an end behind its log (Tansu: docs/tansu-high-watermark.md).

    The same rule as the sensors (``SanctionBook``): the sanction with the highest
    ``double_version``, so a stale one re-sent later does not count. Undecodable
    records and tombstones are skipped, as the sensors skip them. A missing topic
    holds no sanction. Raises ``KafkaTimeoutError`` if the end is not reached in
    ``timeout`` seconds.
    """
    from kafka import KafkaConsumer, TopicPartition

    from schemas.codec import SANCTION, CodecError, decode

    topic = settings.topics.sanctions
    consumer = KafkaConsumer(
        **settings.kafka.client_kwargs(), enable_auto_commit=False, group_id=None
    )
    book = SanctionBook()

    def apply(tp: TopicPartition, rec: Any) -> None:
        if rec.value is None:
            return
        try:
            _, sanction = decode(rec.value, SANCTION)
        except CodecError as exc:
            log.warning("ignoring an undecodable sanction at %s: %s", tp, exc)
            return
        book.apply(sanction)

    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return {}
        consumer.assign(tps)
        consumer.seek_to_beginning()
        read_to_end(consumer, tps, apply, timeout, idle_s)
    finally:
        consumer.close()
    return book.held


def _state(sanction: Sanction | None) -> str:
    if sanction is None:
        return "no sanction"
    state = "blacklisted" if sanction["active"] else "lifted"
    return f"{state} (double_version {sanction['double_version']})"


def compare_sanctions(expected: dict[str, Double], last: dict[str, Sanction]) -> list[Diff]:
    """Every citizen whose sanction in force disagrees with the oracle's ``blacklisted``.

    No sanction means not blacklisted, so a citizen never blacklisted needs none (and
    an inactive one is fine too); a citizen the oracle does not know must not be under
    an active sanction.
    """
    diffs: list[Diff] = []
    for cid in sorted(set(expected) | set(last)):
        double, sanction = expected.get(cid), last.get(cid)
        want = bool(double is not None and double["blacklisted"])
        got = bool(sanction is not None and sanction["active"])
        if want != got:
            state = "blacklisted" if want else "not blacklisted"
            diffs.append(Diff(cid, "sanction", state, _state(sanction)))
    return diffs


def wait_sanctions(
    expected: dict[str, Double],
    settings: Settings,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    idle_s: float = IDLE_S,
) -> tuple[dict[str, Sanction], list[Diff]]:
    """The sanctions in force and their differences with the oracle, read again until
    there are none or ``timeout`` seconds have passed (read at least once; each read
    ends ``idle_s`` seconds past the topic's end, :func:`last_sanctions`).

    The processor sends a sanction in the same batch as the double that decided it,
    but on another topic, so PostgreSQL can show that double a moment before the
    sanction lands.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = last_sanctions(settings, idle_s=idle_s)
        diffs = compare_sanctions(expected, last)
        if progress is not None:
            progress(len(diffs))
        if not diffs or time.monotonic() >= deadline:
            return last, diffs
        time.sleep(1.0)
