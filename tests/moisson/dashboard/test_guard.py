"""The dashboard answers only the names it is reached by (DNS rebinding), and its API
only its own pages (a page on another site cannot start a What if)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moisson.dashboard.guard import allowed, hostname
from moisson.dashboard.server import Dashboard
from moisson.dashboard.tail import LiveTail
from moisson.settings import Settings
from processors.core.fold import default_rules


class Tables:
    """An empty sink's tables, read-only."""

    def score_histogram(self, width):
        return 0, {}

    def blacklisted_now(self):
        return []

    def names(self, ids):
        return {}

    def named_profiles(self):
        return 0

    def profiles(self, ids):
        return {}

    def close(self) -> None: ...


def dashboard(host: str = "127.0.0.1", extra: str = "") -> Dashboard:
    s = Settings().replace(dashboard={"allowed_hosts": extra})
    harvest = LiveTail(s)
    harvest.start = lambda: harvest  # no broker here: the tail is not started
    return Dashboard(s, Tables(), harvest, default_rules(), host=host)


def test_a_host_is_its_name_without_the_port():
    assert hostname("LocalHost:8350") == "localhost"
    assert hostname("localhost.") == "localhost"
    assert hostname("[::1]:8350") == hostname("[::1]") == hostname("::1") == "[::1]"
    for bad in ("", ":8350", "127.0.0.1:", "127.0.0.1:80x", "[::1]x", "[::1]:"):
        assert hostname(bad) is None, bad
    names = allowed("0.0.0.0", " Class.Example , ,lab-pc")
    assert names == {"127.0.0.1", "localhost", "[::1]", "0.0.0.0", "class.example", "lab-pc"}


@pytest.mark.parametrize("path", ["/", "/whatif", "/api/overview", "/api/stream", "/metrics"])
async def test_a_foreign_host_gets_421_on_every_route(path):
    async with TestClient(TestServer(dashboard().app())) as client:
        for host in ("rebind.example", "rebind.example:8350", "127.0.0.1.rebind.example"):
            r = await client.get(path, headers={"Host": host})
            text = await r.text()
            assert r.status == 421, (host, r.status)
            assert text.startswith("error: ") and "\nfix: " in text and "--allowed-hosts" in text


async def test_the_names_it_is_reached_by_are_answered():
    d = dashboard(host="lab-pc.local", extra="class.example")
    async with TestClient(TestServer(d.app())) as client:
        port = client.port
        for host in (
            f"127.0.0.1:{port}",
            f"localhost:{port}",
            "LOCALHOST",
            f"[::1]:{port}",
            f"lab-pc.local:{port}",
            "class.example",
        ):
            r = await client.get("/api/overview", headers={"Host": host})
            assert r.status == 200, host
            assert (await r.json())["citizens"] == 0
        r = await client.get("/api/overview", headers={"Host": "other.example"})
        assert r.status == 421


async def test_the_api_refuses_calls_from_another_site():
    d = dashboard()
    computed: list[object] = []
    d.whatif = lambda variant: computed.append(variant) or b"{}"
    async with TestClient(TestServer(d.app())) as client:
        own = f"http://127.0.0.1:{client.port}"
        for headers in (
            {"Origin": "http://rebind.example"},
            {"Origin": "null"},
            {"Origin": f"http://127.0.0.1:{client.port + 1}"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site", "Origin": own},
        ):
            for path in ("/api/whatif", "/api/overview", "/api/stream", "/api/citizen/c1"):
                r = await client.get(path, headers=headers)
                assert r.status == 403, (path, headers)
                assert (await r.text()).startswith("error: ")
        assert computed == [], "a page on another site cannot start a What if"
        # The dashboard's own pages, a typed address, and a link from elsewhere to a page.
        for headers in ({"Origin": own}, {"Sec-Fetch-Site": "same-origin"}, {}):
            assert (await client.get("/api/whatif", headers=headers)).status == 200
        assert (await client.get("/api/overview", headers={"Sec-Fetch-Site": "none"})).ok
        assert (await client.get("/", headers={"Sec-Fetch-Site": "cross-site"})).status == 200
    assert len(computed) == 1, "the three same-origin What ifs share one computation"
