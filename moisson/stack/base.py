"""Process plumbing shared by the local services."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from moisson import stopping
from moisson.errors import MoissonError


class ServiceError(MoissonError, RuntimeError):
    """A local service could not be obtained; the message says why and what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    what: str = "service",
) -> None:
    """Wait until ``host:port`` accepts connections; fail fast if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            tail = _tail(log) if log else ""
            raise ServiceError(f"{what} exited with code {proc.returncode} before listening{tail}")
        time.sleep(0.2)
    tail = _tail(log) if log else ""
    raise ServiceError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s{tail}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"; last lines of {log}:\n" + "\n".join(text)


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the process group of ``pid``, then SIGKILL after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)


class Service:
    """A started local service: its name, what clients need, and how to stop it."""

    name: str = "service"
    pid: int | None = None
    #: Seconds between SIGTERM and SIGKILL when stopping it.
    stop_timeout: float = 30.0

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid, self.stop_timeout)
            self.pid = None

    def spawn(self, argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own session (so ``stop`` reaches its children); it dies
        with this process when children are tied (:func:`moisson.stopping.tie_children`)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=stopping.preexec(),  # a prctl only: no Python work in the child
            )
        self.pid = proc.pid
        return proc


def java_major_of(java: str) -> int | None:
    """The major version of the ``java`` binary at ``java``, None if it does not run."""
    try:
        out = subprocess.run(
            [java, "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if "java.specification.version" in line:
            try:
                return int(line.split("=")[1].strip().split(".")[0])
            except ValueError:
                return None
    return None


def fetch_with_maven(
    argv: list[str], what: str, into: Path, fetched: Callable[[], bool], cwd: Path | None = None
) -> float:
    """Run Maven (``argv``) to fetch ``what`` into ``into``; the seconds it took.

    On failure ``into`` is removed, so the next try starts clean, and the error carries
    Maven's last output.
    """
    started = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0 or not fetched():
        shutil.rmtree(into, ignore_errors=True)
        raise ServiceError(
            f"could not fetch {what} with Maven (exit {res.returncode}):\n"
            f"{(res.stdout + res.stderr)[-2000:]}"
        )
    return time.monotonic() - started
