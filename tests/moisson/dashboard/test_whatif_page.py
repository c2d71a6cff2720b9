"""The dashboard's What if page, served from a fake harvest of Lulu's week: re-scored
in memory (nothing is sent or written), with names, reasons and clear errors."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from moisson.dashboard.server import Dashboard
from moisson.dashboard.tail import EventTail
from moisson.settings import Settings
from processors.core.fold import Event, default_rules
from processors.core.oracle import Oracle
from producers.city import City


class Tail:
    """The harvest tail, holding Lulu's week as the sensors recorded it."""

    def __init__(self) -> None:
        self.city = City(42, 40, scenario="lulu")
        self.events = [Event(e.kind, e.record) for e in self.city.events(7, Oracle())]
        self.tail = EventTail(Settings().dashboard.events_max_bytes)
        for e in self.events:
            self.tail.add(e)

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Names:
    """The name registry, read-only: it has no way to write."""

    def __init__(self, people) -> None:
        self.people = {p.id: p.name for p in people}

    def names(self, ids):
        return {i: self.people[i] for i in ids if i in self.people}

    def close(self) -> None: ...


def dashboard(tail: Tail) -> Dashboard:
    return Dashboard(Settings(), Names(tail.city.people), tail, default_rules())


async def test_without_association_lulu_would_be_free_and_the_page_says_why():
    tail = Tail()
    lulu = tail.city.cast["lulu"].id
    before = len(tail.events)
    async with TestClient(TestServer(dashboard(tail).app())) as client:
        page = await client.get("/whatif")
        assert page.status == 200 and "Reweight the rules" in await page.text()
        assert "script-src" in page.headers["Content-Security-Policy"]
        assert '<link rel="stylesheet" href="/base.css">' in await page.text()
        css = await client.get("/base.css")
        assert css.content_type == "text/css" and "--accent" in await css.text()
        js = await client.get("/base.js")
        assert js.content_type == "text/javascript" and "textContent" in await js.text()
        live = await (await client.get("/api/whatif")).json()
        assert live["freed"] == [] and live["listed"] == []
        assert lulu in {c["id"] for c in live["live"]["blacklist"]}
        w = await (await client.get("/api/whatif", params={"set": "camera.association=0"})).json()
    (freed,) = w["freed"]
    assert freed["id"] == lulu and freed["name"].startswith("Lulu")
    assert {"rule": "camera.association", "live": [3, -45], "variant": [0, 0]} in freed["why"]
    assert freed["refused"] == [2, 2], "re-scored: her recorded refusals stay"
    assert lulu not in {c["id"] for c in w["variant"]["blacklist"]}
    assert (
        w["variant"]["distribution"]["blacklisted"] == w["live"]["distribution"]["blacklisted"] - 1
    )
    assert "baked" not in w["note"] and "as the sensors recorded them" in w["note"]
    (row,) = [r for r in w["rules"] if r["id"] == "camera.association"]
    assert (row["live"], row["variant"]) == (-15, 0)
    assert w["events"] == before == len(tail.events)
    assert sum(b["count"] for b in w["live"]["distribution"]["bands"]) == 42


async def test_a_bad_set_is_a_clear_400():
    async with TestClient(TestServer(dashboard(Tail()).app())) as client:
        r = await client.get("/api/whatif", params={"set": "camera.nope=0"})
        assert r.status == 400 and "no rule 'camera.nope'" in await r.text()
        r = await client.get("/api/whatif", params={"set": "nonsense"})
        assert r.status == 400 and "RULE=DELTA" in await r.text()
