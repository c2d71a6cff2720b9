"""A clean stop on SIGTERM, SIGINT and SIGHUP, within a deadline, children included.

Every long-running command stops the same way whoever asks: a service manager
(SIGTERM), a terminal's Ctrl-C (SIGINT) or a closed terminal (SIGHUP). The first signal
asks for a clean stop, which is what Ctrl-C always did, and arms a deadline of
:data:`GRACE_S`; a second signal, or the deadline, ends the process at once. A signal
that was ignored when the command started (``nohup``) stays ignored.

The children of a command that calls :func:`tie_children` die with it however it dies,
``kill -9`` included: a child it spawns gets SIGTERM from the kernel when the command is
gone (Linux's ``PR_SET_PDEATHSIG``), and a service it cannot spawn itself (PostgreSQL,
which ``pg_ctl`` detaches) is watched by a small :func:`guard` process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

#: The signals that ask for a clean stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Seconds a clean stop may take before the process ends regardless: under the 10 s
#: ``docker compose stop`` waits before its SIGKILL.
GRACE_S = 8.0
#: Seconds a command gives each of its Kafka clients to close once asked to stop (their
#: own defaults wait minutes for a broker that is gone; Tansu 0.6 left a LeaveGroup
#: unanswered for 2 s).
CLOSE_S = 1.0
#: Seconds a stopping faust worker gives its producer, in all, to deliver what it holds.
FLUSH_S = 2.0
#: Seconds the children of a stopping command get, together, before SIGKILL.
CHILDREN_S = 5.0

_PR_SET_PDEATHSIG = 1


class Stop:
    """A stop asked by a signal: the first asks for a clean stop and arms the deadline;
    the second, or the deadline, ends the process (:meth:`force`).

    Calling it says whether a stop was asked, so it serves as a ``should_stop``.
    """

    def __init__(self, grace: float = GRACE_S) -> None:
        self.grace = grace
        self.signum: int | None = None
        #: Whether the first signal raises KeyboardInterrupt in the main thread (the
        #: Ctrl-C path) rather than only setting the flag (see :meth:`polled`).
        self.interrupts = True
        self._timer: threading.Timer | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    def ask(self, signum: int) -> None:
        """Note a stop signal: the first arms the deadline, the second forces the exit."""
        if self.signum is not None:
            self.force(signum, f"second signal ({signal.Signals(signum).name})")
        self.signum = signum
        self._timer = threading.Timer(
            self.grace, self.force, (signum, f"no clean stop within {self.grace:g}s")
        )
        self._timer.daemon = True
        self._timer.start()

    def force(self, signum: int, why: str) -> None:
        """End the process now: its tied children get their signal from the kernel."""
        with contextlib.suppress(OSError):
            os.write(2, f"moisson: {why}; exiting now\n".encode())
        os._exit(128 + signum)

    def handle(self, signum: int, _frame: FrameType | None = None) -> None:
        """The signal handler: :meth:`ask`, then the Ctrl-C path unless :meth:`polled`."""
        first = self.signum is None
        self.ask(signum)
        if first and self.interrupts:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def polled(self) -> Iterator[Stop]:
        """Within: a signal only sets the flag, for a loop that checks it (so a batch is
        never cut in half); a signal before or after interrupts as Ctrl-C does."""
        self.interrupts = False
        try:
            yield self
        finally:
            self.interrupts = True


def on_stop_signals(grace: float = GRACE_S) -> Stop:
    """Handle SIGTERM, SIGINT and SIGHUP as Ctrl-C, with a deadline (main thread only);
    a signal ignored at start stays ignored."""
    stop = Stop(grace)
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, stop.handle)
    return stop


def ignored(sig: int) -> bool:
    """Whether ``sig`` is ignored in this process (``nohup`` ignores SIGHUP)."""
    return signal.getsignal(sig) is signal.SIG_IGN


# --- children that die with their parent -------------------------------------------

_tied = False


def tie_children() -> None:
    """From now on, the children this process spawns (:func:`preexec`) and the services
    it starts (:func:`guard`) die with it, ``kill -9`` included; for a foreground command
    such as the demo, never for ``moisson stack up``, whose services outlive it."""
    global _tied
    _tied = True


def tied() -> bool:
    return _tied


def preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` for a child that must die with this process (SIGTERM, so it
    still stops cleanly), or None when children are not tied or off Linux.

    The kernel sends the signal when the *thread* that spawned the child ends: spawn
    from the main thread.
    """
    if not _tied or not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now, not in the child
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return die_with_parent


def started_at(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (/proc), None if gone: with
    the pid, it names one process, never one that reuses the pid later."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def guard(pid: int, sig: int = signal.SIGINT, kill_after: float = 3.0) -> Guard | None:
    """A watchdog process that sends ``sig`` to ``pid`` (then SIGKILL after
    ``kill_after`` seconds) once this process is gone, however it went: for a service
    this process did not spawn itself. None when children are not tied or off Linux."""
    if not _tied or not sys.platform.startswith("linux"):
        return None
    since = started_at(pid)
    if since is None:
        return None
    proc = subprocess.Popen(
        [sys.executable, "-m", "moisson.stopping", str(pid), since, str(sig), str(kill_after)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Guard(proc)


class Guard:
    """The watchdog's end of the line: closing it (or dying) sets the watchdog off."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def close(self, timeout: float = 5.0) -> None:
        """Release the watchdog (after the service was stopped: it then has nothing to do)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)


def _watch(pid: int, since: str, sig: int, kill_after: float) -> None:
    """The watchdog: wait for the parent's end of stdin to close, then stop ``pid`` if it
    is still the process that was started at ``since``."""
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is not for us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    for s, wait in ((sig, kill_after), (signal.SIGKILL, 0.0)):
        if started_at(pid) != since:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, s)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and started_at(pid) == since:
            time.sleep(0.1)


if __name__ == "__main__":
    _watch(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
