"""The runner without services: hostile records are set aside on the dead-letter topic
with their reasons, the batch is committed past them, and never before every dead
letter is acknowledged."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from moisson.metrics import SinkMetrics
from processors.core.fold import fold_all
from processors.core.scoring import load_rules
from schemas import dead_letters as dl
from schemas.codec import DOUBLE, LEDGER, METRO, encode
from sinks.base import Record, Refusal, Sink, SinkBatch
from sinks.dead_letters import DeadLetter, DeadLetterTopic
from sinks.postgres import checks
from sinks.runner import lag_of, run_sink
from tests.factories import Msg, ev

RULES = frozenset(r.id for r in (*load_rules().rules, *load_rules().correlations))


class Memory(Sink):
    """A database in memory that checks as PostgreSQL's sink does, and refuses at write
    time any record of citizen ``refused``."""

    def __init__(self, refused: str = "c-refuse") -> None:
        self.refused, self.rows, self.events = refused, Counter[str](), []

    def refuse(self, kind: str, record: Record) -> Refusal | None:
        return checks.check(kind, record, RULES)

    def write(self, batch):
        ids = [r["citizen_id"] for r in (*batch.doubles, *batch.ledger, *batch.blacklist)]
        if self.refused in ids:
            raise ValueError(f"no {self.refused}")
        self.rows.update(ids)
        self.events.append("write")
        return len(batch.doubles)


class OneBatch:
    """A consumer that delivers ``messages`` once, then nothing."""

    def __init__(self, messages: list[Msg], events: list[str]) -> None:
        self.messages, self.events, self.commits = messages, events, 0

    def poll(self, **_: Any):
        batch, self.messages = self.messages, []
        out: dict[TopicPartition, list[Msg]] = {}
        for m in batch:
            out.setdefault(TopicPartition(m.topic, m.partition), []).append(m)
        return out

    def commit(self):
        self.commits += 1
        self.events.append("commit")

    def assignment(self):
        return set()


class Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class Producer:
    """kafka-python's producer, as the dead-letter topic uses it: sends fail ``failing``
    times, values over ``client_max`` are refused at once, over ``broker_max`` (or in a
    flush of more than one) by the broker."""

    def __init__(self, events: list[str], failing: int = 0, client_max=10**9, broker_max=10**9):
        self.events, self.failing = events, failing
        self.client_max, self.broker_max = client_max, broker_max
        self.sent: list[dict[str, Any]] = []
        self.unflushed = 0

    def send(self, topic, key=None, value=None, headers=None):
        if len(value or b"") > self.client_max:
            raise MessageSizeTooLargeError("larger than max_request_size")
        self.unflushed += 1
        if self.failing:
            self.failing -= 1
            return Future(KafkaTimeoutError("no broker"))
        if len(value or b"") > self.broker_max:
            return Future(MessageSizeTooLargeError("larger than message.max.bytes"))
        self.sent.append({"topic": topic, "key": key, "value": value, **dl.read(headers)})
        self.events.append("dead letter")
        return Future(None)

    def flush(self, timeout=None):
        self.unflushed = 0


def hostile_batch() -> tuple[list[Msg], Counter[str]]:
    """Good records of two citizens, then one record of each hostile kind (with the
    reason each deserves)."""
    doubles = fold_all(
        [
            ev("camera", citizen="c1", behaviour="GATHERING"),
            ev("payment", citizen="c2", hours=1, category="FINES"),
        ]
    )
    good = SinkBatch.of(doubles.values())
    entry = good.ledger[0]
    values = [
        *(("doubles", encode(DOUBLE, d)) for d in good.doubles),
        *(("ledger", encode(LEDGER, e)) for e in good.ledger),
    ]
    hostile = [
        ("doubles", encode(DOUBLE, {**doubles["c1"], "score": 2**40}), "out-of-range"),
        ("doubles", encode(DOUBLE, {**doubles["c1"], "citizen_id": "x" * 3000}), "too-long"),
        ("doubles", encode(DOUBLE, {**doubles["c1"], "tier": "A\x00"}), "nul-character"),
        ("ledger", encode(LEDGER, {**entry, "rule_id": "made.up"}), "unknown-rule"),
        ("ledger", encode(LEDGER, {**entry, "citizen_id": "c-refuse"}), "write-error"),
        ("ledger", b"garbage bytes", "not-single-object"),
        ("ledger", encode(METRO, dict(ev("metro").record)), "not-a-sink-record"),
        ("doubles", None, "not-single-object"),  # a tombstone
    ]
    messages = [Msg(t, 0, i, b"k", v) for i, (t, v) in enumerate(values)]
    messages += [Msg(t, 1, i, b"h", v) for i, (t, v, _) in enumerate(hostile)]
    return messages, Counter(reason for *_, reason in hostile)


def test_hostile_records_are_set_aside_and_the_batch_committed_past_them():
    events: list[str] = []
    messages, reasons = hostile_batch()
    sink, consumer, producer = Memory(), OneBatch(messages, events), Producer(events)
    sink.events = events
    metrics = SinkMetrics()
    stats = run_sink(
        consumer,  # type: ignore[arg-type]
        sink,
        1000,
        should_stop=lambda: consumer.commits >= 1,
        metrics=metrics,
        dead_letters=DeadLetterTopic(producer, "sink.dlq"),
    )
    assert Counter(s[dl.REASON] for s in producer.sent) == reasons
    by_offset = {int(s[dl.OFFSET]): s for s in producer.sent}
    for m in messages[-len(by_offset) :]:  # each dead letter is its record, unchanged
        letter = by_offset[m.offset]
        assert (letter["value"], letter["key"]) == (m.value, m.key)
        assert (letter[dl.TOPIC], letter[dl.PARTITION]) == (m.topic, "1")
    assert events[-1] == "commit" and consumer.commits == 1
    assert "write" in events and events.index("commit") > max(
        i for i, e in enumerate(events) if e == "dead letter"
    )
    assert sink.rows == {"c1": 2, "c2": 2}  # a double and a ledger entry each
    assert stats.dead_letters == len(producer.sent) and stats.undecodable == 3
    r = metrics.registry
    for reason, n in reasons.items():
        assert r.get_sample_value("moisson_sink_dead_letters_total", {"reason": reason}) == n
    assert r.get_sample_value("moisson_sink_records_written_total", {"record": "ledger"}) == 2


def test_nothing_is_committed_until_the_dead_letters_are_acknowledged():
    events: list[str] = []
    messages, reasons = hostile_batch()
    consumer, producer = OneBatch(messages, events), Producer(events, failing=3)
    slept: list[float] = []
    run_sink(
        consumer,  # type: ignore[arg-type]
        Memory(),
        1000,
        should_stop=lambda: consumer.commits >= 1,
        sleep=slept.append,
        dead_letters=DeadLetterTopic(producer, "sink.dlq"),
    )
    assert consumer.commits == 1
    # The failed attempts' letters went out again: at least once, never lost.
    assert Counter(s[dl.REASON] for s in producer.sent) >= reasons
    assert slept  # it waited between attempts


def test_a_sink_stopped_while_the_dead_letter_topic_is_away_commits_nothing():
    events: list[str] = []
    messages, _ = hostile_batch()
    consumer, producer = OneBatch(messages, events), Producer(events, failing=10**6)
    stats = run_sink(
        consumer,  # type: ignore[arg-type]
        Memory(),
        1000,
        should_stop=lambda: producer.failing < 10**6 - 20,
        sleep=lambda s: None,
        dead_letters=DeadLetterTopic(producer, "sink.dlq"),
    )
    assert consumer.commits == 0 and stats.batches == 0


@pytest.mark.parametrize(
    ("client_max", "broker_max", "kept"),
    [(100, 10**9, False), (10**9, 100, False), (10**9, 10**9, True)],
)
def test_a_dead_letter_too_large_for_the_topic_goes_without_its_bytes(client_max, broker_max, kept):
    events: list[str] = []
    producer = Producer(events, client_max=client_max, broker_max=broker_max)
    big = Msg("ledger", 3, 42, b"key", b"v" * 1000)
    DeadLetterTopic(producer, "sink.dlq").send([DeadLetter(Refusal("too-long", "x"), big)])
    [sent] = producer.sent
    assert (sent[dl.REASON], sent[dl.TOPIC], sent[dl.PARTITION], sent[dl.OFFSET]) == (
        "too-long",
        "ledger",
        "3",
        "42",
    )
    if kept:
        assert (sent["key"], sent["value"], sent[dl.DETAIL]) == (b"key", big.value, "x")
    else:
        assert (sent["key"], sent["value"]) == (None, b"")
        assert sent[dl.DETAIL].startswith("[key and value (1,003 bytes) not copied")


class Positions:
    """A consumer's assignment, positions and fetched high-water marks."""

    def __init__(self, at: dict[int, int], high: dict[int, int | None]) -> None:
        self.at, self.high = at, high

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("doubles", p) for p in self.at}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high[tp.partition]

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return self.at[tp.partition]


def test_lag_is_never_negative_when_the_position_is_past_the_high_water():
    """Behind, caught up, past a high-water mark reported behind the log (Tansu's
    ListOffsets), and not fetched yet."""
    consumer = Positions({0: 3, 1: 9, 2: 12, 3: 0}, {0: 9, 1: 9, 2: 9, 3: None})
    assert lag_of(consumer) == {("doubles", 0): 6, ("doubles", 1): 0, ("doubles", 2): 0}
