"""The dashboard's tail of the sensor topics and the dead letters: rates, the live feed,
counts, and the decoded events the What if page re-scores.

It reads without a consumer group (so it commits nothing and changes nothing), and
whatever the topics hold, what it keeps is bounded: the events by their bytes
(:class:`EventTail`), the feed by its length and the size of each of its strings, the
dead-letter reasons by their number and length.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from moisson.settings import Settings
from processors.core.fold import Event
from schemas import dead_letters
from schemas.codec import CodecError, IdResolver, decode
from schemas.kinds import SENSOR_KINDS

log = logging.getLogger(__name__)

#: What the feed keeps of one string and of one list (the page shows one line per event).
FEED_TEXT, FEED_ITEMS = 200, 20
#: Distinct dead-letter reasons counted, and the length of one; the rest count as "other".
REASONS, REASON_LEN = 64, 64
#: A kept event's share of the tail's tuple and deque slot, on top of the event itself.
SLOT_BYTES = 72


def jsonable(value: Any) -> Any:
    """``value`` as JSON can carry it (times as ISO 8601, bytes as hex, UUIDs as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "hex") and hasattr(value, "int"):  # uuid.UUID
        return str(value)
    return value


def clipped(value: Any) -> Any:
    """A JSON value with long strings and lists cut, for the one-line feed."""
    if isinstance(value, str):
        return value if len(value) <= FEED_TEXT else value[:FEED_TEXT] + "…"
    if isinstance(value, dict):
        return {k: clipped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clipped(v) for v in value[:FEED_ITEMS]]
    return value


def footprint(event: Event) -> int:
    """The bytes ``event`` takes in memory, by ``sys.getsizeof`` of it and of everything
    its record holds (shared objects counted each time: an estimate from above)."""
    size, stack = sys.getsizeof(event) + SLOT_BYTES, [event.record]
    while stack:
        value = stack.pop()
        size += sys.getsizeof(value)
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return size


def follow(
    settings: Settings,
    topics: list[str],
    take: Callable[[Any], None],
    stop: threading.Event,
    **consumer: Any,
) -> None:
    """Read ``topics`` from their beginning, without a consumer group (so committing
    nothing), handing each record to ``take`` until ``stop`` is set; while the broker or
    the topics are not there yet, try again each second. ``consumer``: more
    ``KafkaConsumer`` settings."""
    from kafka import KafkaConsumer, TopicPartition

    while not stop.is_set():
        try:
            reader = KafkaConsumer(
                **settings.kafka.client_kwargs(),
                enable_auto_commit=False,
                group_id=None,
                **consumer,
            )
            parts = [
                TopicPartition(t, p)
                for t in topics
                for p in sorted(reader.partitions_for_topic(t) or ())
            ]
            if not parts:
                reader.close()
                time.sleep(1)
                continue
            reader.assign(parts)
            reader.seek_to_beginning()
            while not stop.is_set():
                for records in reader.poll(timeout_ms=100).values():
                    for r in records:
                        take(r)
            reader.close()
        except Exception as exc:  # the broker may not be up yet
            log.warning("cannot tail %s yet: %s", ", ".join(topics), exc)
            time.sleep(1)


class EventTail:
    """The newest decoded events, at most ``max_bytes`` of them by :func:`footprint`:
    each new event drops the oldest until the tail fits again."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        #: Events ever added (the What if cache's key: it grows with each one, kept or not).
        self.taken = 0
        self.dropped = 0
        self._events: deque[tuple[Event, int]] = deque()
        self._lock = threading.Lock()

    def add(self, event: Event) -> None:
        size = footprint(event)
        with self._lock:
            self._events.append((event, size))
            self.bytes += size
            self.taken += 1
            while self.bytes > self.max_bytes and self._events:
                _, gone = self._events.popleft()
                self.bytes -= gone
                self.dropped += 1

    def snapshot(self) -> tuple[int, list[Event]]:
        """How many events were ever added, and the ones kept, oldest first."""
        with self._lock:
            return self.taken, [e for e, _ in self._events]

    def __len__(self) -> int:
        return len(self._events)


class LiveTail:
    """Tails the sensor topics (rates, latest events) and the dead letters (counts per reason)."""

    def __init__(
        self,
        settings: Settings,
        feed_size: int = 60,
        resolver: IdResolver | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver  # registry mode: sensor messages may name a schema id
        self.totals: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.recent: deque[tuple[float, str]] = deque(maxlen=50_000)
        self.feed: deque[dict[str, Any]] = deque(maxlen=feed_size)
        self.first_event_at: float | None = None
        #: The run's decoded sensor events, newest first to stay, for the What if page.
        self.tail = EventTail(settings.dashboard.events_max_bytes)
        #: The earliest event time seen: the simulation's day 1 (Beijing time) on the page.
        self.sim_start: datetime | None = None
        #: Refusals the sensors reported (a gate DENIED, a ticket office REFUSED), by kind.
        self.refused: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harvest-tail", daemon=True)
        self.kind_of = settings.topics.kind_of

    def start(self) -> LiveTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        def take(record: Any) -> None:
            if record.topic == self.settings.topics.dlq:
                self._dead_letter(record.headers or [])
            else:
                self._take(record.topic, record.value)

        follow(self.settings, [*self.kind_of, self.settings.topics.dlq], take, self._stop)

    def _take(self, topic: str, value: bytes) -> None:
        kind = self.kind_of.get(topic, topic)
        now = time.monotonic()
        self.totals[kind] += 1
        self.recent.append((now, kind))
        if self.first_event_at is None:
            self.first_event_at = time.time()
        try:
            _, record = decode(value, resolver=self.resolver)
        except CodecError as exc:
            self.feed.append({"kind": kind, "error": exc.reason.value})
            return
        self.tail.add(Event(kind, record))
        at = record.get("occurred_at")
        if isinstance(at, datetime) and (self.sim_start is None or at < self.sim_start):
            self.sim_start = at
        if record.get("outcome") in ("DENIED", "REFUSED"):
            self.refused[kind] += 1
        self.feed.append({"kind": kind, **clipped(jsonable(record))})

    def _dead_letter(self, headers: list[tuple[str, bytes | None]]) -> None:
        reason = str(dead_letters.read(headers).get(dead_letters.REASON) or "unknown")
        reason = reason[:REASON_LEN]
        if reason not in self.dead_letters and len(self.dead_letters) >= REASONS:
            reason = "other"
        self.dead_letters[reason] += 1

    def rates(self, window: float = 5.0) -> dict[str, float]:
        cutoff = time.monotonic() - window
        counts = Counter(k for t, k in list(self.recent) if t >= cutoff)
        return {k: round(counts.get(k, 0) / window, 1) for k in SENSOR_KINDS}
