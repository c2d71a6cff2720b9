"""The dashboard is read-only and private by default."""

from __future__ import annotations

from click.testing import CliRunner

from moisson.cli import main
from moisson.dashboard.server import Dashboard
from moisson.settings import Settings


class Nothing:
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...
    def profiles(self, ids):
        return {}


def test_every_route_only_reads():
    app = Dashboard(Settings(), Nothing(), Nothing()).app()
    methods = {route.method for route in app.router.routes()}
    assert methods <= {"GET", "HEAD"}, methods


def test_it_listens_on_loopback_unless_told_otherwise():
    for command in ("dashboard", "demo"):
        text = CliRunner().invoke(main, [command, "--help"]).output
        assert "default: 127.0.0.1" in text, text


async def test_metrics_count_requests_by_route_never_by_citizen():
    """``/metrics`` on the dashboard's own port; a citizen's page counts under its
    route's pattern, so no id reaches Prometheus."""
    from aiohttp.test_utils import TestClient, TestServer

    d = Dashboard(Settings(), Nothing(), Nothing())
    async with TestClient(TestServer(d.app())) as client:
        assert (await client.get("/api/citizen/c0000042")).status == 404
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        body = await resp.text()
    assert 'moisson_dashboard_requests_total{route="/api/citizen/{cid}"} 1.0' in body
    assert "c0000042" not in body
    assert "moisson_dashboard_stream_clients 0.0" in body


def test_its_bounds_are_flags_with_env_vars_and_documented_defaults():
    text = " ".join(CliRunner().invoke(main, ["dashboard", "--help"]).output.split())
    for flag, env, default in (
        ("--allowed-hosts", "DASHBOARD_ALLOWED_HOSTS", '""'),
        ("--max-stream-clients", "DASHBOARD_MAX_STREAM_CLIENTS", "300"),
        ("--events-max-bytes", "DASHBOARD_EVENTS_MAX_BYTES", str(256 * 1024 * 1024)),
    ):
        assert flag in text and f"env var: {env}; default: {default}" in text, flag
