"""Registry mode in the harvester: a batch's schema ids are looked up off the event loop
before it is planned, and the planner reads only the cache (issue 23, finding 6)."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from unittest import mock

import pytest

from processors.core.fold import Event, fold_all
from producers.city import generate_events
from schemas.codec import SENSOR_SCHEMAS, encode_confluent
from schemas.registry_client import CachedResolver
from tests.fake_registry import FakeRegistry, fake_registry

ID_OF = {s.name: i for i, s in enumerate(SENSOR_SCHEMAS.values(), start=1)}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    """A fake registry serving our sensor schemas, named by REGISTRY_URL (requested
    before ``harvester``, whose settings read the environment)."""
    with fake_registry() as fake:
        for schema in SENSOR_SCHEMAS.values():
            fake.serve(ID_OF[schema.name], schema)
        fake.serve(7, '{"type": "array", "items": "null"}')
        monkeypatch.setenv("REGISTRY_URL", fake.url)
        monkeypatch.setenv("REGISTRY_LOOKUP_TIMEOUT_S", "2")
        yield fake


async def test_registry_framed_events_are_applied_with_lookups_off_the_loop(registry, harvester):
    agent, _table, sent = harvester
    resolver = agent.harvester.folding.resolver
    assert isinstance(resolver, CachedResolver) and resolver.timeout_s == 2
    loop_thread = threading.current_thread()
    callers: list[threading.Thread] = []
    real_urlopen = urllib.request.urlopen

    def spy(*args, **kwargs):
        callers.append(threading.current_thread())
        return real_urlopen(*args, **kwargs)

    events = list(generate_events(5, 15, 150))
    ev = events[0]
    with mock.patch("urllib.request.urlopen", side_effect=spy):
        for ev in events:
            schema = SENSOR_SCHEMAS[ev.kind]
            value = encode_confluent(schema, ID_OF[schema.name], ev.record)
            await agent.put(key=ev.citizen_id.encode(), value=value)
        unknown = encode_confluent(SENSOR_SCHEMAS[ev.kind], 4242, ev.record)
        foreign = b"\x00\x00\x00\x00\x07" + b"\x80" * 9 + b"\x01\x00"  # 2^62 nulls
        await agent.put(key=ev.citizen_id.encode(), value=unknown)
        await agent.put(key=ev.citizen_id.encode(), value=foreign)
    expected = fold_all(Event(e.kind, e.record) for e in events)
    last = {key.decode(): value for key, value in sent}
    assert set(last) == set(expected)
    for cid, double in expected.items():
        assert last[cid]["version"] == double["version"], cid
    assert [d[2]["moisson.reason"] for d in agent.dead] == [b"unknown-schema-id", b"unknown-schema"]
    assert [d[1] for d in agent.dead] == [unknown, foreign]
    assert dict(registry.lookups) == {**{i: 1 for i in ID_OF.values()}, 4242: 1, 7: 1}
    assert callers and loop_thread not in callers, "no lookup ran on the event loop's thread"


async def test_a_registry_outage_dead_letters_nothing_and_the_partition_waits(registry, harvester):
    agent, _table, sent = harvester
    registry.status = 503
    events = list(generate_events(6, 5, 20))
    for ev in events:
        schema = SENSOR_SCHEMAS[ev.kind]
        value = encode_confluent(schema, ID_OF[schema.name], ev.record)
        await agent.put(key=ev.citizen_id.encode(), value=value)
    assert agent.dead == [], "a valid event is never dead-lettered for an outage"
    assert sent == [], "nothing is applied past the offset a partition waits at"
    waiting = agent.harvester.progress.waiting
    assert waiting and all(offset == 0 for offset in waiting.values())
