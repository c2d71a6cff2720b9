"""A real ``moisson classroom`` on the embedded stack (Tansu, embedded PostgreSQL),
open on this machine's first non-loopback IPv4 address, as an instructor opens it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from moisson.ops import pipeline
from moisson.stack.base import free_port

#: What ``moisson classroom`` prints once the room answers.
READY = "Ctrl-C stops everything"


@dataclass
class Session:
    proc: subprocess.Popen[bytes]
    log: Path
    port: int
    address: str  # where phones reach the room
    code: str
    database_url: str
    schema: str
    bootstrap: str
    prefix: str

    @property
    def local(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def room(self) -> str:
        return f"http://{self.address}:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "DATABASE_SCHEMA_NAME": self.schema,
            "TOPICS_PREFIX": self.prefix,
        }


def room_address() -> str:
    """This machine's first non-loopback IPv4 address (a classroom's Wi-Fi stands in)."""
    for _iface, addrs in sorted(psutil.net_if_addrs().items()):
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    pytest.fail("this machine has no non-loopback IPv4 address to open the room on")


def request(
    url: str,
    body: Any = None,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, str | None]:
    """(status, JSON or text, the capability cookie set) of one request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if cookie:
        req.add_header("Cookie", f"moisson_room={cookie}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, raw, set_cookie = r.status, r.read(), r.headers.get("Set-Cookie")
    except urllib.error.HTTPError as exc:
        status, raw, set_cookie = exc.code, exc.read(), None
    found = re.search(r"moisson_room=([^;]+)", set_cookie or "")
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = raw.decode(errors="replace")
    return status, payload, found.group(1) if found else None


def start_classroom(tmp: Path, *extra: str) -> Session:
    port, address = free_port(), room_address()
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["COLUMNS"] = "300"
    log = tmp / "classroom.log"
    out = open(log, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moisson",
            "classroom",
            "--port",
            str(port),
            "--open-room",
            address,
            "--broker",
            "embedded",
            *extra,
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        pipeline.wait_for_log(log, READY, 180, proc)
    except (TimeoutError, RuntimeError):
        proc.kill()
        raise AssertionError(f"the classroom did not start:\n{log.read_text()}") from None
    text = log.read_text()
    return Session(
        proc=proc,
        log=log,
        port=port,
        address=address,
        code=re.search(r"\(code (\w+)\)", text).group(1),  # type: ignore[union-attr]
        database_url=re.search(r"at (postgresql://[^\s,]+)", text).group(1),  # type: ignore[union-attr]
        schema=re.search(r"database schema (\S+),", text).group(1),  # type: ignore[union-attr]
        bootstrap=re.search(r"Kafka: .* at ([^\s,]+:\d+)", text).group(1),  # type: ignore[union-attr]
        prefix=re.search(r"topics (\S+)\*,", text).group(1),  # type: ignore[union-attr]
    )


def stop_classroom(session: Session) -> str:
    """SIGINT, as Ctrl-C; the log; fails if anything it started is left running."""
    kids = psutil.Process(session.proc.pid).children(recursive=True)
    session.proc.send_signal(signal.SIGINT)
    try:
        session.proc.wait(30)
    except subprocess.TimeoutExpired:
        session.proc.kill()
        raise AssertionError("the classroom did not stop within 30 s of SIGINT") from None
    _, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive, f"left running: {[p.info for p in alive]}"
    return session.log.read_text()


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    session = start_classroom(
        tmp_path_factory.mktemp("classroom"), "--citizens", "60", "--speed", "60"
    )
    try:
        yield session
    finally:
        if session.proc.poll() is None:
            stop_classroom(session)
