"""The dashboard is read-only and private by default."""

from __future__ import annotations

from click.testing import CliRunner

from moisson.cli import main
from moisson.dashboard.server import Dashboard


def test_every_route_only_reads():
    app = Dashboard.app(object.__new__(Dashboard))
    methods = {route.method for route in app.router.routes()}
    assert methods <= {"GET", "HEAD"}, methods


def test_it_listens_on_loopback_unless_told_otherwise():
    for command in ("dashboard", "demo"):
        text = CliRunner().invoke(main, [command, "--help"]).output
        assert "default: 127.0.0.1" in text, text
