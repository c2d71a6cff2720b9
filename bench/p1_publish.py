"""P1: events/s of the sensors' path (generate + Avro + ``Publisher``) against raw
kafka-python sends of the same pre-encoded payloads, with the same producer settings.
Its raw rate is also P6's baseline."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bench.harness import Result, isolate, say
from bench.measure import preload

if TYPE_CHECKING:
    from moisson.settings import Settings


def p1(s: Settings, n: int) -> tuple[Result, float]:
    """P1 on ``n`` events: its result, and the raw kafka-python rate (P6's baseline)."""
    from moisson.resolvers import registry_client
    from producers.city import generate_events
    from producers.publisher import Publisher, ensure_topics

    say(f"P1: encoding {n:,} events for the raw baseline")
    raw_s = isolate(s, "p1raw")
    moi_s = isolate(s, "p1moisson")
    ensure_topics(raw_s)
    ensure_topics(moi_s)
    payloads = [
        (raw_s.topics.sensor(e.kind), e.citizen_id.encode(), e.encode())
        for e in generate_events(11, 10_000, count=n)
    ]
    say("P1: raw kafka-python sends")
    raw_seconds = preload(raw_s, payloads)
    raw_rate = n / raw_seconds
    del payloads
    say("P1: moisson sensors path (generate + Avro + Publisher)")
    publisher = Publisher(moi_s, registry=registry_client(moi_s))
    started = time.perf_counter()
    sent = publisher.publish(generate_events(11, 10_000, count=n))
    moi_seconds = time.perf_counter() - started
    publisher.close()
    rate = sent / moi_seconds
    ratio = rate / raw_rate
    return (
        Result(
            "P1 sensors publish",
            round(rate),
            "events/s",
            round(raw_rate),
            round(ratio, 3),
            "≥ 0.9 × raw kafka-python",
            ratio >= 0.9,
            {"events": n, "baseline": "kafka-python sends of the same pre-encoded payloads"},
        ),
        raw_rate,
    )
