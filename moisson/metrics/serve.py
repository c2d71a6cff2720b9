"""Serve a registry on ``http://host:port/metrics`` (prometheus-client's own server)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from moisson.errors import MoissonError

log = logging.getLogger(__name__)


class MetricsError(MoissonError, RuntimeError):
    """The endpoint cannot listen; ``fix`` says what to change."""


def cannot_listen(what: str, host: str, port: int, envvar: str, why: str) -> MetricsError:
    """The error of an endpoint whose port is taken (or refused), with the fix."""
    return MetricsError(
        f"{what} metrics cannot listen on {host}:{port} ({why})",
        f"set {envvar} to a free port (0: any free port, logged) or METRICS_ENABLED=false",
    )


@dataclass
class MetricsServer:
    """A running endpoint: where it listens, and how to stop it."""

    what: str
    host: str
    port: int
    _server: Any
    _thread: Any

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    registry: CollectorRegistry, host: str, port: int, what: str, envvar: str
) -> MetricsServer:
    """Serve ``registry`` in a daemon thread; port 0 takes any free one. Logs
    ``<what> metrics: <url>`` (how a port of 0 is discovered).

    Raises :class:`MetricsError` when the port is taken, naming ``envvar``.
    """
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise cannot_listen(what, host, port, envvar, exc.strerror or str(exc)) from None
    running = MetricsServer(what, host, server.server_port, server, thread)
    log.info("%s metrics: %s", what, running.url)
    return running
