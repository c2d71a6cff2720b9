"""The one way commands stop (moisson/stopping.py), on small Python children: the first
signal is Ctrl-C with a deadline, the second or the deadline ends the process, an
ignored signal stays ignored, and tied children die with their parent, kill -9 included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from moisson import stopping

ROOT = Path(__file__).parents[2]


def child(code: str, **popen: object) -> subprocess.Popen[str]:
    """A Python child running ``code``; it prints "ready" when it may be signalled."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **popen,  # type: ignore[arg-type]
    )


def ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.communicate(timeout=10)


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


CLEAN_STOP = """
    import sys, time
    from moisson import stopping
    stopping.on_stop_signals(grace={grace})
    try:
        print("ready", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("cleaning up", flush=True)
        time.sleep({cleanup})
        print("clean", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_each_signal_takes_the_ctrl_c_path(sig: int) -> None:
    proc = child(CLEAN_STOP.format(grace=5, cleanup=0.2))
    ready(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.split() == ["cleaning", "up", "clean"]


def test_a_clean_up_past_the_deadline_is_cut_short() -> None:
    proc = child(CLEAN_STOP.format(grace=1, cleanup=30))
    ready(proc)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert proc.returncode == 128 + signal.SIGTERM
    assert "clean\n" not in out
    assert "no clean stop within 1s; exiting now" in err


def test_a_second_signal_ends_the_process_at_once() -> None:
    proc = child(CLEAN_STOP.format(grace=30, cleanup=30))
    ready(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "cleaning up"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert proc.returncode == 128 + signal.SIGINT
    assert "second signal (SIGINT); exiting now" in err


def test_a_polled_stop_only_sets_the_flag() -> None:
    proc = child(
        """
        import time
        from moisson import stopping
        stop = stopping.on_stop_signals(grace=5)
        with stop.polled():
            print("ready", flush=True)
            while not stop():
                time.sleep(0.01)
        print("left the loop", flush=True)
        """
    )
    ready(proc)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == "left the loop"


def test_a_signal_ignored_at_start_stays_ignored() -> None:
    """As under ``nohup``: SIGHUP ignored by the parent is not taken over."""
    proc = child(
        """
        import signal, time
        from moisson import stopping
        stopping.on_stop_signals(grace=5)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        print("ready", flush=True)
        time.sleep(1.0)
        print("still here", flush=True)
        """,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    ready(proc)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == "still here"


TIED_PARENT = """
    import subprocess, sys, time
    from moisson import stopping
    stopping.tie_children()
    kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                           preexec_fn=stopping.preexec(), start_new_session=True)
    print("ready", kid.pid, flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_tied_child_dies_with_its_parent_even_on_kill_9() -> None:
    proc = child(TIED_PARENT)
    assert proc.stdout is not None
    word, pid = proc.stdout.readline().split()
    assert word == "ready"
    assert not gone(int(pid), 0.5)  # alive while its parent is
    proc.kill()
    proc.wait(10)
    assert gone(int(pid), 5)


def test_an_untied_child_outlives_its_parent() -> None:
    """The test above can fail: without tie_children, the child stays (as ``moisson
    stack up``'s services do)."""
    proc = child(TIED_PARENT.replace("stopping.tie_children()", ""))
    assert proc.stdout is not None
    _, pid = proc.stdout.readline().split()
    proc.kill()
    proc.wait(10)
    try:
        assert not gone(int(pid), 1.0)
    finally:
        os.kill(int(pid), signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_the_watchdog_stops_a_detached_service_when_its_parent_dies() -> None:
    """As the demo's PostgreSQL, which pg_ctl detaches: a process that is no child of the
    parent, stopped (SIGINT, then SIGKILL) once the parent is gone."""
    service = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        start_new_session=True,
        stderr=subprocess.DEVNULL,  # its KeyboardInterrupt
    )
    try:
        proc = child(
            f"""
            import time
            from moisson import stopping
            stopping.tie_children()
            guard = stopping.guard({service.pid}, kill_after=1.0)
            assert guard is not None
            print("ready", flush=True)
            time.sleep(120)
            """
        )
        ready(proc)
        assert service.poll() is None
        proc.kill()
        proc.wait(10)
        assert service.wait(5) == -signal.SIGINT
    finally:
        service.kill()


def test_a_released_watchdog_leaves_a_process_it_no_longer_guards_alone() -> None:
    """Closed after the service stopped, it does nothing, even to a pid now reused."""
    stopping.tie_children()
    try:
        service = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        guard = stopping.guard(service.pid)
        assert guard is not None
        since = stopping.started_at(service.pid)
        service.kill()
        service.wait(5)
        assert stopping.started_at(service.pid) != since  # gone (or another process)
        guard.close()
        assert guard.proc.returncode == 0
    finally:
        stopping._tied = False


def test_nothing_is_tied_unless_asked() -> None:
    assert not stopping.tied()
    assert stopping.preexec() is None
    assert stopping.guard(os.getpid()) is None
