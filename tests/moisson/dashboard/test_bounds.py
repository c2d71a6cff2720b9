"""The dashboard on a real PostgreSQL stays responsive whoever asks: What ifs run one
at a time off the event loop, the overview is computed about once a second however many
browsers follow the stream, and the 301st of them gets 503."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from moisson.dashboard.server import Dashboard
from moisson.dashboard.shared import WHATIF_PENDING
from processors.core.fold import Event
from processors.core.oracle import Oracle
from producers.city import City

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def week() -> list[Event]:
    """A week of 1,000 citizens and Lulu, as the sensors recorded it (about 57,000 events)."""
    city = City(42, 1000, scenario="lulu")
    return [Event(e.kind, e.record) for e in city.events(7, Oracle())]


def statements(d: Dashboard) -> list[str]:
    """Every SQL statement the dashboard's reader sends from now on."""
    sent: list[str] = []
    event.listen(d.pg.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    return sent


def one_at_a_time(d: Dashboard) -> list[int]:
    """Counts the What ifs computing at once, each time one starts."""
    seen: list[int] = []
    running, lock, real = [0], threading.Lock(), d.whatif

    def whatif(variant):
        with lock:
            running[0] += 1
            seen.append(running[0])
        try:
            return real(variant)
        finally:
            with lock:
                running[0] -= 1

    d.whatif = whatif  # type: ignore[method-assign]
    return seen


async def overview_while(client: TestClient, work: asyncio.Future) -> list[float]:
    """How long each ``/api/overview`` takes, asked every 50 ms until ``work`` is done."""
    took: list[float] = []
    while not work.done():
        start = time.monotonic()
        r = await client.get("/api/overview")
        assert r.status == 200 and "histogram" in await r.json()
        took.append(time.monotonic() - start)
        await asyncio.sleep(0.05)
    return took


async def test_twenty_what_ifs_leave_the_overview_answering(settings, week):
    d = Dashboard.open(settings)
    for e in week:
        d.live.tail.add(e)
    concurrent = one_at_a_time(d)
    async with TestClient(TestServer(d.app())) as client:
        await client.get("/api/overview")

        # Twenty of the same: one computation, shared.
        same = asyncio.gather(
            *(client.get("/api/whatif", params={"set": "camera.association=0"}) for _ in range(20))
        )
        took = await overview_while(client, same)
        bodies = {await r.read() for r in same.result()}
        assert [r.status for r in same.result()] == [200] * 20 and len(bodies) == 1
        assert d.whatifs.computed == 1
        again = await client.get("/api/whatif", params={"set": "camera.association=0"})
        assert await again.read() in bodies and d.whatifs.computed == 1, "cached"

        # Twenty different: one at a time, the first few queued, the others told to wait.
        started = time.monotonic()
        overviews = d.shared_overview.computed
        different = asyncio.gather(
            *(client.get("/api/whatif", params={"set": f"metro.denied={-i}"}) for i in range(20))
        )
        took += await overview_while(client, different)
        elapsed = time.monotonic() - started
        statuses = sorted(r.status for r in different.result())
        busy = [await r.text() for r in different.result() if r.status == 503]
        assert statuses == [200] * WHATIF_PENDING + [503] * (20 - WHATIF_PENDING)
        assert all(t.startswith("error: ") and "\nfix: " in t for t in busy)
        assert d.whatifs.computed == 1 + WHATIF_PENDING
        assert d.shared_overview.computed - overviews >= elapsed / 2, "the overview was live"
    assert concurrent == [1] * (1 + WHATIF_PENDING), "never two What ifs at once"
    assert max(took) < 1.0, sorted(took)[-5:]
    print(
        f"\n{len(week)} events; 20 same + 20 different What ifs in {elapsed:.1f}s; "
        f"/api/overview asked {len(took)} times, slowest {max(took) * 1000:.0f} ms"
    )


async def test_three_hundred_browsers_one_overview_a_second_and_the_301st_waits(settings):
    d = Dashboard.open(settings)
    assert settings.dashboard.max_stream_clients == 300
    per_overview = statements(d)
    d.overview()
    per = len(per_overview)
    assert per >= 3, per_overview  # histogram, blacklist, named profiles (+ names)

    async with (
        TestServer(d.app()) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        url = server.make_url("/api/stream")
        sent = statements(d)
        started = time.monotonic()
        streams = await asyncio.gather(*(session.get(url) for _ in range(300)))
        assert [r.status for r in streams] == [200] * 300 and d.streams == 300
        refused = await session.get(url)
        text = await refused.text()
        assert refused.status == 503 and refused.headers["Retry-After"]
        assert text.startswith("error: ") and "DASHBOARD_MAX_STREAM_CLIENTS" in text

        await asyncio.sleep(4)
        firsts = [await r.content.readuntil(b"\n\n") for r in streams]
        assert all(f.startswith(b"event: overview\ndata: {") for f in firsts)
        elapsed, queries = time.monotonic() - started, len(sent)
        computed = queries / per
        assert computed <= elapsed + 1, (queries, per, elapsed)
        assert computed >= elapsed - 2, "the overview is still computed every second"

        streams[0].close()
        deadline = time.monotonic() + 5
        while d.streams == 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert d.streams == 299, "a browser that left frees its place"
        back = await session.get(url)
        assert back.status == 200
        back.close()
        for r in streams[1:]:
            r.close()
    print(
        f"\n300 stream clients for {elapsed:.1f}s: {queries} statements, "
        f"{computed:.1f} overviews ({per} statements each)"
    )
