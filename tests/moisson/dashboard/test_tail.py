"""What the dashboard keeps of the topics is bounded whatever they hold: the What if
tail by its bytes (the oldest go first), the feed's strings and lists, the number of
dead-letter reasons."""

from __future__ import annotations

import gc
import tracemalloc

from moisson.dashboard.tail import (
    FEED_ITEMS,
    FEED_TEXT,
    REASONS,
    EventTail,
    LiveTail,
    footprint,
)
from moisson.settings import Settings
from processors.core.fold import Event
from processors.core.oracle import Oracle
from producers.city import City
from schemas import dead_letters
from schemas.codec import BOOK, CAMERA, METRO, PAYMENT, decode, encode
from tests.factories import ev

SCHEMAS = {"metro": METRO, "payment": PAYMENT, "book": BOOK, "camera": CAMERA}


def week() -> list[tuple[str, bytes]]:
    """Lulu's week as the sensors sent it: (kind, message)."""
    city = City(42, 40, scenario="lulu")
    return [(e.kind, encode(SCHEMAS[e.kind], e.record)) for e in city.events(7, Oracle())]


def test_the_count_of_bytes_is_not_below_what_the_events_take():
    """Measured with tracemalloc: the decoded events take no more than the tail counts,
    and not much less (the count is an estimate from above, not a guess)."""
    messages = week()
    gc.collect()
    tracemalloc.start()
    tail = EventTail(max_bytes=1 << 40)
    for kind, value in messages:
        tail.add(Event(kind, decode(value)[1]))
    taken, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(tail) == len(messages) > 1000
    assert taken <= tail.bytes <= 2 * taken, (taken, tail.bytes)


def test_the_tail_keeps_the_newest_events_within_its_bytes():
    events = [ev("metro", citizen=f"c{i:07d}") for i in range(2000)]
    each = footprint(events[0])
    tail = EventTail(max_bytes=each * 500)
    for e in events:
        tail.add(e)
    taken, kept = tail.snapshot()
    assert tail.bytes <= tail.max_bytes
    assert taken == 2000 and tail.dropped == 2000 - len(kept)
    assert 450 <= len(kept) <= 500
    assert kept == events[-len(kept) :], "the oldest went first"
    huge = ev("book", title="x" * 60_000)
    tail.add(huge)
    assert tail.bytes <= tail.max_bytes and tail.snapshot()[1][-1] is huge
    nothing = EventTail(max_bytes=0)
    nothing.add(events[0])
    assert len(nothing) == 0 and nothing.bytes == 0 and nothing.taken == 1


def test_the_harvest_holds_at_most_its_byte_cap():
    s = Settings().replace(dashboard={"events_max_bytes": 200_000})
    harvest = LiveTail(s)
    topic = s.topics.sensor("book")
    for i in range(3000):
        record = ev("book", citizen=f"c{i:07d}", title="t" * 500).record
        harvest._take(topic, encode(BOOK, record))
    assert harvest.totals["book"] == 3000 and harvest.tail.taken == 3000
    assert 0 < harvest.tail.bytes <= 200_000 and harvest.tail.dropped > 2000


def test_the_feed_keeps_one_line_of_a_hostile_event_and_the_tail_all_of_it():
    s = Settings()
    harvest = LiveTail(s)
    title = "三" * 50_000
    companions = [f"c{i:07d}" for i in range(5000)]
    harvest._take(s.topics.sensor("book"), encode(BOOK, ev("book", title=title).record))
    harvest._take(
        s.topics.sensor("camera"), encode(CAMERA, ev("camera", companions=companions).record)
    )
    book, camera = list(harvest.feed)
    assert book["title"] == title[:FEED_TEXT] + "…"
    assert camera["companions"] == companions[:FEED_ITEMS]
    _, (kept_book, kept_camera) = harvest.tail.snapshot()
    assert kept_book.record["title"] == title and kept_camera.record["companions"] == companions


def test_dead_letter_reasons_are_counted_within_a_bound():
    harvest = LiveTail(Settings())
    for i in range(1000):
        harvest._dead_letter([(dead_letters.REASON, f"made-up-{i}-{'x' * 500}".encode())])
    harvest._dead_letter([(dead_letters.REASON, b"made-up-0-" + b"x" * 500)])
    assert len(harvest.dead_letters) == REASONS + 1
    assert harvest.dead_letters["other"] == 1000 - REASONS
    assert max(map(len, harvest.dead_letters)) <= 64
    assert sum(harvest.dead_letters.values()) == 1001
