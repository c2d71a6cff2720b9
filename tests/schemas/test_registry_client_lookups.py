"""Schema id lookups: cached verdicts (unknown ids too), outages told apart from unknown
ids, and lookups off the event loop under a timeout (issue 23, finding 6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from unittest import mock

import pytest

from moisson.stack import free_port
from processors.core.validation import Rejection, apply_message
from producers.city import generate_events
from schemas.codec import SENSOR_SCHEMAS, CodecError, Reason, encode_confluent
from schemas.registry_client import CachedResolver, SchemaRegistryClient
from tests.fake_registry import FakeRegistry, fake_registry

IDS = {i: s for i, s in enumerate(SENSOR_SCHEMAS.values(), start=1)}
ID_OF = {s.name: i for i, s in IDS.items()}
FOREIGN = '{"type": "array", "items": "null"}'


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with fake_registry() as registry:
        for schema_id, schema in IDS.items():
            registry.serve(schema_id, schema)
        registry.serve(7, FOREIGN)
        yield registry


def client_of(fake: FakeRegistry, **kw) -> SchemaRegistryClient:
    return SchemaRegistryClient(fake.url, timeout=kw.pop("timeout", 5), attempts=1, **kw)


def framed(schema_id: int, kind: str = "metro") -> bytes:
    """A valid ``kind`` event of the citizen ``c``, framed with ``schema_id``."""
    ev = next(e for e in generate_events(5, 20, 200) if e.kind == kind)
    return encode_confluent(SENSOR_SCHEMAS[kind], schema_id, ev.record | {"citizen_id": "c"})


def verdict(resolver, value: bytes):
    return apply_message(
        None, expected_kind=None, topic="t", key=b"c", value=value, resolver=resolver
    )


def test_unknown_ids_are_looked_up_once_each(fake):
    client = client_of(fake)
    flood = range(1000, 1050)
    for _ in range(3):
        for schema_id in flood:
            assert client.resolve(schema_id) is None
    assert all(fake.lookups[i] == 1 for i in flood)
    out = verdict(client.resolve, framed(1001))
    assert out.rejected is Rejection.UNKNOWN_SCHEMA_ID
    assert fake.lookups[1001] == 1


def test_the_verdict_caches_are_bounded(fake):
    client = client_of(fake, cached_ids=10)
    for schema_id in range(100, 120):
        client.resolve(schema_id)
    assert client.cached(119) is None  # the newest are kept
    with pytest.raises(CodecError) as info:
        client.cached(100)  # the oldest were dropped: not looked up any more
    assert info.value.reason is Reason.REGISTRY_UNAVAILABLE
    assert client.resolve(100) is None
    assert fake.lookups[100] == 2


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_a_registry_that_says_nothing_about_the_id_is_unavailable_not_cached(fake, status):
    """Auth refused, a wrong URL (a 404 without Confluent's 40403), server errors: the
    message is not at fault; once the registry answers, the same id resolves."""
    fake.status = status
    client = client_of(fake)
    for _ in range(2):
        out = verdict(client.resolve, framed(1))
        assert out.rejected is Rejection.REGISTRY_UNAVAILABLE, out.detail
    assert fake.lookups[1] == 2
    fake.status = None
    assert client.resolve(1) is IDS[1]


def test_the_planner_resolver_never_touches_the_network():
    """A miss is unavailable at once: no connection, no retry, no sleep."""
    client = SchemaRegistryClient(f"http://127.0.0.1:{free_port()}", attempts=3)
    resolver = CachedResolver(client)
    with (
        mock.patch("urllib.request.urlopen") as urlopen,
        mock.patch("time.sleep") as sleep,
    ):
        started = time.perf_counter()
        out = verdict(resolver, framed(1))
        took = time.perf_counter() - started
    assert out.rejected is Rejection.REGISTRY_UNAVAILABLE
    assert "not looked up yet" in out.detail
    assert urlopen.call_count == 0 and sleep.call_count == 0
    assert took < 1.0  # loose on purpose: the counts above are the proof, not the clock


async def test_prefetch_fills_the_cache_the_planner_reads(fake):
    client = client_of(fake)
    resolver = CachedResolver(client, timeout_s=5)
    values: list[bytes | None] = [framed(i, kind) for i, kind in enumerate(SENSOR_SCHEMAS, 1)]
    values += [framed(1), framed(7), framed(4242), b"", None]
    values.append(next(iter(generate_events(5, 20, 200))).encode())  # a single object
    await resolver.prefetch(values)
    assert dict(fake.lookups) == {1: 1, 2: 1, 3: 1, 4: 1, 7: 1, 4242: 1}
    with mock.patch("urllib.request.urlopen") as urlopen:
        for schema_id, schema in IDS.items():
            assert resolver(schema_id) is schema
        assert resolver(4242) is None
        with pytest.raises(CodecError) as info:
            resolver(7)
        assert info.value.reason is Reason.UNKNOWN_SCHEMA
        assert verdict(resolver, framed(1)).double is not None
    assert urlopen.call_count == 0
    await resolver.prefetch(values)
    assert sum(fake.lookups.values()) == 6, "nothing is looked up twice"


async def ticking(stop: asyncio.Event) -> float:
    """The longest gap between two ticks of the event loop until ``stop``."""
    worst, last = 0.0, time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    return worst


async def test_a_hanging_registry_costs_a_batch_its_timeout_and_never_the_loop(fake):
    fake.delay_s = 3.0  # the bounds below are loose against it: CI has two busy cores
    resolver = CachedResolver(client_of(fake), timeout_s=0.3, retry_after_s=5)
    stop = asyncio.Event()
    ticks = asyncio.ensure_future(ticking(stop))
    started = time.perf_counter()
    await resolver.prefetch([framed(1)])
    took = time.perf_counter() - started
    stop.set()
    assert 0.25 < took < 2.5
    assert await ticks < 1.5, "the event loop kept running during the lookup"
    assert verdict(resolver, framed(1)).rejected is Rejection.REGISTRY_UNAVAILABLE
    # The registry just failed us: the next batches do not wait for it again.
    started = time.perf_counter()
    await resolver.prefetch([framed(1), framed(2)])
    assert time.perf_counter() - started < 1.5
    # The lookup in flight goes on and fills the cache: the id resolves, asked once.
    deadline = time.monotonic() + 5
    while client_missing(resolver, 1) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert resolver(1) is IDS[1]
    assert fake.lookups[1] == 1 and fake.lookups[2] == 0


def client_missing(resolver: CachedResolver, schema_id: int) -> bool:
    return bool(resolver.client.missing([schema_id]))


async def test_an_outage_is_told_fast_and_the_ids_resolve_once_it_ends(fake):
    fake.status = 503
    client = SchemaRegistryClient(fake.url, timeout=5, attempts=3)
    resolver = CachedResolver(client, timeout_s=3, retry_after_s=0.2)
    started = time.perf_counter()
    await resolver.prefetch([framed(1)])
    # Three attempts with back-off would sleep 1.5 s.
    assert time.perf_counter() - started < 1.2, "one attempt per batch, no back-off sleeps"
    assert verdict(resolver, framed(1)).rejected is Rejection.REGISTRY_UNAVAILABLE
    fake.status = None
    await resolver.prefetch([framed(1)])  # within retry_after_s: not asked again yet
    assert verdict(resolver, framed(1)).rejected is Rejection.REGISTRY_UNAVAILABLE
    await asyncio.sleep(0.25)
    await resolver.prefetch([framed(1)])
    assert verdict(resolver, framed(1)).double is not None
    assert fake.lookups[1] == 2


async def test_a_second_batch_joins_the_lookup_in_flight_instead_of_starting_another(fake):
    """At most one lookup thread: a batch arriving while one runs waits for it, then
    looks up what it still lacks."""
    fake.delay_s = 0.4
    resolver = CachedResolver(client_of(fake), timeout_s=0.2, retry_after_s=0)
    await resolver.prefetch([framed(1)])  # overruns: the lookup of 1 goes on
    assert client_missing(resolver, 1)
    await resolver.prefetch([framed(1), framed(2)])  # joins it, then looks up 2
    await resolver.prefetch([framed(1), framed(2)])
    deadline = time.monotonic() + 5
    while client_missing(resolver, 2) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert resolver(1) is IDS[1] and resolver(2) is IDS[2]
    assert fake.lookups[1] == 1 and fake.lookups[2] == 1
