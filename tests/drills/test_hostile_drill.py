"""The hostile drill: while a normal recording is replayed and folded, a hostile
producer sends well-formed messages meant to stall, wedge or poison the pipeline
(a citizen's burst, strings and maps past their caps, a double grown past its size cap,
events on the wrong partition). Every normal event is applied exactly (the oracle on the
normal citizens), the worker and the sink never restart, both consumer groups reach lag
0, every hostile message is a dead letter with its reason (or applied within the caps),
and the processor's p99 batch time stays under a second.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from moisson.ops.verify import compare, compare_sanctions, last_sanctions, tally
from processors.core.validation import Limits
from processors.worker import kafka_partition
from producers.publisher import ensure_topics
from schemas import dead_letters as dl
from schemas.codec import SENSOR_SCHEMAS, encode
from tests.drills.harness import RESULTS, Pipeline, Result, send, sent, size

SIZE = size()
pytestmark = [pytest.mark.drills, pytest.mark.timeout(SIZE.timeout_s + 300)]
HOSTILE = "hostile-"
BURST = Limits().max_burst_events + 100
DOUBLE_CAP = 65536  # the drill's worker: so one hostile double passes it in a few events


@dataclass
class Sent:
    """Every hostile message: (topic, partition, offset) -> the reasons it may end with
    (None: applied)."""

    allowed: dict[tuple[str, int, int], set[str | None]] = field(default_factory=dict)
    must: dict[str, str] = field(default_factory=dict)  # citizen -> a reason it must get


class Hostile:
    """A compromised sensor: kafka-python, Kafka's default partitioner, valid Avro."""

    def __init__(self, drill: Pipeline, start: datetime) -> None:
        from kafka import KafkaProducer

        self.topics = drill.settings.topics
        self.producer = KafkaProducer(**drill.settings.kafka.client_kwargs(), acks="all")
        self.start = start
        self.sent = Sent()
        self.pending: list[tuple[Any, set[str | None]]] = []

    def event(self, kind: str, citizen: str, i: int, **fields: Any) -> dict[str, Any]:
        templates: dict[str, dict[str, Any]] = {
            "metro": {"station": "Guomao", "line": "1", "direction": "ENTRY"},
            "book": {"isbn": "9787536692930", "category": "NEUTRAL", "price_cents": 3000},
            "camera": {"location": "Houhai", "behaviour": "PASSING", "confidence": 0.9},
        }
        base = dict(templates[kind])
        if kind == "metro":
            base |= {"ticket": "CARD", "fare_cents": 400, "outcome": "ALLOWED"}
        elif kind == "book":
            base |= {"title": "三体"}
        else:
            base |= {"companions": [], "companions_blacklisted": []}
        return {
            "event_id": str(uuid.uuid4()),
            "citizen_id": citizen,
            "sensor_id": f"{kind}-hostile",
            "occurred_at": self.start + timedelta(seconds=i),
            **base,
            **fields,
        }

    def send(
        self, kind: str, record: dict[str, Any], may: set[str | None], partition: int | None = None
    ) -> None:
        value = encode(SENSOR_SCHEMAS[kind], record)
        fut = self.producer.send(
            self.topics.sensor(kind), value, key=record["citizen_id"].encode(), partition=partition
        )
        self.pending.append((fut, may))

    def flush(self) -> None:
        self.producer.flush()
        for fut, may in self.pending:
            md = fut.get(timeout=30)
            self.sent.allowed[(md.topic, md.partition, md.offset)] = may
        self.pending.clear()

    def all_kinds(self) -> Sent:
        """Send every kind of hostile message, in waves, and wait for the broker."""
        c = f"{HOSTILE}burst"
        for i in range(BURST):  # 1,000 held in a week, then refused: citizen-burst
            self.send("metro", self.event("metro", c, i), {None, "citizen-burst"})
        self.sent.must[c] = "citizen-burst"
        self.flush()
        c = f"{HOSTILE}long"
        for i in range(10):  # 60 KB titles, under the 64 KiB message cap
            self.send("book", self.event("book", c, i, title="书" * 20_000), {"key-too-long"})
        self.sent.must[c] = "key-too-long"
        for i in range(5):  # what PostgreSQL would refuse: an id past its index limit
            c = f"{HOSTILE}{i}" + "x" * 3000
            self.send("metro", self.event("metro", c, i), {"key-too-long"})
        c = f"{HOSTILE}nul"
        self.send("book", self.event("book", c, 0, title="a\x00b"), {"nul-character"})
        self.sent.must[c] = "nul-character"
        c = f"{HOSTILE}keys"
        for i in range(Limits().max_keys + 12):  # a new station each time
            self.send("metro", self.event("metro", c, i, station=f"S{i}"), {None, "too-many-keys"})
        self.sent.must[c] = "too-many-keys"
        self.flush()
        c = f"{HOSTILE}big"
        may = {None, "state-too-large"}
        for i in range(120):  # keys of 250 bytes, 120 a map: past the drill's double cap
            pad = f"{i:03d}" + "x" * 247
            self.send("metro", self.event("metro", c, i, station=pad), may)
            self.send("book", self.event("book", c, i, title=pad), may)
            if i % 10 == 0:
                crowd = [f"{j:03d}" + "y" * 247 for j in range(i, i + 10)]
                self.send("camera", self.event("camera", c, i, companions=crowd), may)
        self.sent.must[c] = "state-too-large"
        c = f"{HOSTILE}wrong"
        away = (kafka_partition(c.encode(), 4) + 1) % 4
        for i in range(20):  # an explicit partition, as another partitioner would choose
            self.send("metro", self.event("metro", c, i), {"wrong-partition"}, partition=away)
        self.sent.must[c] = "wrong-partition"
        self.flush()
        self.producer.close()
        return self.sent


class NormalOnly:
    """A PostgreSQL reader that shows only the normal citizens (the oracle's)."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def profiles(self) -> dict[str, Any]:
        return {c: p for c, p in self.reader.profiles().items() if not c.startswith(HOSTILE)}

    def ledger(self) -> list[dict[str, Any]]:
        return [r for r in self.reader.ledger() if not r["citizen_id"].startswith(HOSTILE)]

    def blacklist_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.reader.blacklist_rows() if not r["citizen_id"].startswith(HOSTILE)]

    def versions(self) -> dict[str, int]:
        return {c: v for c, v in self.reader.versions().items() if not c.startswith(HOSTILE)}


def dead_letters(drill: Pipeline) -> dict[tuple[str, int, int], str]:
    """(topic, partition, offset) -> reason, for the whole dead-letter topic."""
    from kafka import KafkaConsumer, TopicPartition

    s = drill.settings
    consumer = KafkaConsumer(**s.kafka.client_kwargs(), group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(s.topics.dlq, p) for p in consumer.partitions_for_topic(s.topics.dlq)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        out: dict[tuple[str, int, int], str] = {}
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    h = dl.read(r.headers or [])
                    key = (h[dl.TOPIC], int(h[dl.PARTITION]), int(h[dl.OFFSET]))
                    out[key] = h[dl.REASON]
        return out
    finally:
        consumer.close()


def lags(drill: Pipeline, group: str, topics: list[str]) -> int:
    """How far ``group``'s committed offsets are behind the end of ``topics``."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    kw = drill.settings.kafka.client_kwargs()
    admin = KafkaAdminClient(**kw)
    consumer = KafkaConsumer(**kw, group_id=None)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t)]
        ends = consumer.end_offsets(tps)
        got = admin.list_group_offsets(group).get(group, {})
        return sum(max(0, ends[tp] - (got[tp].offset if tp in got else 0)) for tp in tps)
    finally:
        admin.close()
        consumer.close()


def batch_p99_under(url: str, seconds: float) -> tuple[float, int]:
    """The share of the worker's fold batches that took at most ``seconds``, and how
    many there were (from its histogram, scraped once)."""
    import urllib.request

    text = urllib.request.urlopen(url, timeout=10).read().decode()
    total = re.search(r"^moisson_fold_batch_seconds_count (\S+)$", text, re.M)
    assert total, "no batch histogram"
    count = float(total.group(1))
    le = re.search(rf'^moisson_fold_batch_seconds_bucket{{le="{seconds:.1f}"}} (\S+)$', text, re.M)
    assert le, f"no {seconds} s bucket in the batch histogram"
    return float(le.group(1)) / count, int(count)


def test_hostile_messages_during_a_replay_poison_nothing(drill: Pipeline):
    began = time.monotonic()
    drill.settings = drill.settings.replace(processor={"max_double_bytes": DOUBLE_CAP})
    ensure_topics(drill.settings)  # before the worker subscribes: faust finds them at once
    drill.start_sink()
    drill.start_worker()
    expected = drill.expected
    start = min(d["first_seen"] for d in expected.values())
    hostile = Hostile(drill, start)
    replay = send(drill.recording, drill.settings, seconds=SIZE.paced_s)
    waves: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: waves.setdefault("sent", hostile.all_kinds()))
    thread.start()
    thread.join(120)
    assert "sent" in waves, "the hostile producer did not finish"
    sent(*replay, timeout=SIZE.paced_s + 300)
    pg = NormalOnly(drill.pg)
    deadline = time.monotonic() + SIZE.timeout_s
    while time.monotonic() < deadline:
        assert drill.alive() is None, drill.alive()
        done = sum(1 for c, d in expected.items() if pg.versions().get(c, 0) >= d["version"])
        if done == len(expected):
            break
        time.sleep(0.5)
    diffs = compare(expected, pg)  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while diffs and time.monotonic() < deadline:  # ledger rows and periods in flight
        time.sleep(0.5)
        diffs = compare(expected, pg)  # type: ignore[arg-type]
    t = tally(expected, pg.profiles())
    assert (t.lost, t.duplicated, diffs[:5]) == (0, 0, []), "a normal event was lost or changed"
    sanctions = {c: s for c, s in last_sanctions(drill.settings).items() if c in expected}
    assert compare_sanctions(expected, sanctions) == []

    sent_ = waves["sent"]
    topics = drill.settings.topics
    deadline = time.monotonic() + 60
    while lags(drill, drill.settings.processor.app_id, list(topics.sensors)) and (
        time.monotonic() < deadline
    ):
        time.sleep(1)
    assert lags(drill, drill.settings.processor.app_id, list(topics.sensors)) == 0
    sink_topics = [topics.doubles, topics.ledger, topics.blacklist]
    deadline = time.monotonic() + 60
    while lags(drill, drill.settings.sink.group_id, sink_topics) and time.monotonic() < deadline:
        time.sleep(1)
    assert lags(drill, drill.settings.sink.group_id, sink_topics) == 0

    letters = dead_letters(drill)
    wrong = {
        where: (letters.get(where), may)
        for where, may in sent_.allowed.items()
        if letters.get(where) not in may
    }
    assert not wrong, f"{len(wrong)} hostile messages ended otherwise: {list(wrong.items())[:5]}"
    by_citizen_reason = {r for r in letters.values()}
    assert set(sent_.must.values()) <= by_citizen_reason

    assert drill.alive() is None
    log = (drill.logs / "worker-0-1.log").read_text(errors="replace")
    assert "Traceback" not in log and "crashed" not in log.lower(), log[-3000:]
    assert log.count("Worker ready") == 1, "the worker restarted"
    sink_log = (drill.logs / "sink-1.log").read_text(errors="replace")
    assert "Traceback" not in sink_log, sink_log[-3000:]
    url = re.search(r"processor metrics: (http://\S+/metrics)", log)
    assert url, "the worker logged no metrics endpoint"
    share, batches = batch_p99_under(url.group(1), 1.0)
    assert share >= 0.99, f"only {share:.1%} of {batches} batches took under 1 s"
    reasons = Counter(letters.get(w) or "applied" for w in sent_.allowed)
    RESULTS.append(
        Result(
            "hostile producer",
            drill.events,
            [],
            t.lost,
            t.duplicated,
            len(diffs),
            [],
            round(time.monotonic() - began, 1),
            f"{len(sent_.allowed)} hostile messages: {dict(sorted(reasons.items()))}; "
            f"{share:.2%} of {batches} batches under 1 s",
        )
    )
