"""Run the pipeline's parts as child processes, the way an operator would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from moisson import stopping
from moisson.settings import Settings, settings_env

T = TypeVar("T")


def child_env(settings: Settings) -> dict[str, str]:
    """The parent's environment plus ``settings``, so children see the same configuration."""
    env = dict(os.environ)
    env.update(settings_env(settings))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def spawn(argv: list[str], settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, its output in ``log``; it dies with this
    process when children are tied (:func:`moisson.stopping.tie_children`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            env=child_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=stopping.preexec(),  # a prctl only: no Python work in the child
        )


def worker_args(settings: Settings, loglevel: str = "info") -> list[str]:
    """``faust … worker`` arguments; without the web server unless it is enabled
    (faust binds its port even when ``web_enabled`` is off, so two workers collide)."""
    web = (
        ["--with-web", "--web-port", str(settings.processor.web_port)]
        if settings.processor.web_enabled
        else ["--without-web"]
    )
    return ["worker", "-l", loglevel, *web]


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """A faust worker: exactly ``faust -A processors.worker worker``."""
    return spawn(
        [sys.executable, "-m", "faust", "-A", "processors.worker", *worker_args(settings)],
        settings,
        log,
    )


def start_sink(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "moisson", "sink"], settings, log)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """Stop a child cleanly (SIGTERM), or kill it after ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def stop_all(procs: list[subprocess.Popen[bytes]], timeout: float = stopping.CHILDREN_S) -> None:
    """Stop children together: SIGTERM to each at once, then SIGKILL to their process
    groups for those still running after ``timeout`` seconds (so a stop takes the
    slowest child's time, not the sum)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> int:
    """``kill -9`` a child and its process group: no clean-up, no flush, no goodbye."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return proc.returncode


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    interval: float = 0.5,
    alive: Callable[[], str | None] = lambda: None,
) -> T:
    """Call ``probe`` until ``done(result)``; raise with the last result on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        problem = alive()
        if problem:
            raise RuntimeError(problem)
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s; last state: {result!r}")
        time.sleep(interval)


def wait_for_log(
    log: Path, needle: str, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> float:
    """Wait until ``needle`` appears in ``log``; return the seconds it took."""
    started = time.monotonic()

    def seen() -> bool:
        try:
            return needle in log.read_text(errors="replace")
        except OSError:
            return False

    def alive() -> str | None:
        if proc is not None and proc.poll() is not None:
            return f"{proc.args!r} exited with {proc.returncode}; see {log}"
        return None

    wait_for(seen, bool, timeout, interval=0.2, alive=alive)
    return time.monotonic() - started


def start_worker_ready(
    settings: Settings, log: Path, timeout: float = 120.0
) -> tuple[subprocess.Popen[bytes], float]:
    """Start a faust worker and wait until it owns its partitions."""
    proc = start_worker(settings, log)
    took = wait_for_log(log, "Worker ready", timeout, proc)
    return proc, took
