"""Every long-running command stops cleanly on SIGTERM, SIGINT and SIGHUP, with its
broker up or gone: within 10 s the command and every process it started have exited,
every port they listened on is free, and the stop was its own (exit 0, not the
deadline's). ``kill -9`` of ``moisson demo`` leaves no child behind, and the next demo
starts on the same port.

Each case starts one instance per signal side by side, waits until all are at work,
takes their broker away if the case says so, and signals them one after the other,
timing each stop. The broker is "up", "killed" (SIGKILL: connections refused) or
"frozen" (SIGSTOP: connections accepted, requests never answered). The times go to
tests/artifacts/signals.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from moisson.ops.pipeline import child_env
from moisson.settings import Settings
from moisson.stack.base import free_port, port_open
from moisson.stack.kafka import Tansu
from moisson.stack.provision import isolated

pytestmark = pytest.mark.integration

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
WITHIN = 10.0  # the bound asserted
WATCH = WITHIN + 5.0  # how long a stop is watched, so the table shows a slow one's time
READY = 180.0
GOLDEN = Path(__file__).parents[2] / "golden" / "recording"
ARTIFACTS = Path(__file__).parents[2] / "artifacts"
#: (command, signal, broker) → seconds to a clean stop.
TIMES: dict[tuple[str, str, str], float] = {}


@dataclass
class Run:
    """One command under test, and what it owned just before the signal."""

    proc: subprocess.Popen[bytes]
    log: Path
    ready: Callable[[Run], bool]
    port: int = 0  # the demo's dashboard
    #: Processes of the command that are not its descendants (the demo's PostgreSQL).
    also: Callable[[psutil.Process], bool] = lambda q: False
    tree: list[psutil.Process] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def launch(argv: list[str], env: dict[str, str], log: Path, ready: Callable[[Run], bool]) -> Run:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moisson", *argv],
            env={**env, "COLUMNS": "200"},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Run(proc, log, ready)


def alive(q: psutil.Process) -> bool:
    try:
        return q.is_running() and q.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def collect(run: Run) -> None:
    """The command's tree (with the processes ``run.also`` names, and theirs) and the
    ports they listen on."""
    root = psutil.Process(run.proc.pid)
    procs = [root, *root.children(recursive=True)]
    for q in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if q not in procs and run.also(q):
                procs += [q, *q.children(recursive=True)]
    run.tree = procs
    for q in procs:
        with contextlib.suppress(psutil.Error):
            run.ports |= {
                c.laddr.port for c in q.net_connections("inet") if c.status == psutil.CONN_LISTEN
            }


def wait_ready(runs: list[Run]) -> None:
    deadline = time.monotonic() + READY
    waiting = list(runs)
    while waiting:
        for run in list(waiting):
            assert run.proc.poll() is None, f"exited with {run.proc.returncode}:\n{run.text()}"
            if run.ready(run):
                waiting.remove(run)
        assert time.monotonic() < deadline, f"not at work in {READY:.0f}s:\n{waiting[0].text()}"
        time.sleep(0.2)


def stop_seconds(run: Run, sig: int) -> float:
    """Signal ``run``; the seconds until its tree is gone and its ports are free."""
    started = time.monotonic()
    run.proc.send_signal(sig)
    while (took := time.monotonic() - started) < WATCH:
        if (
            run.proc.poll() is not None
            and not any(alive(q) for q in run.tree[1:])
            and not any(port_open("127.0.0.1", p) for p in run.ports)
        ):
            return took
        time.sleep(0.05)
    return took


def kill_leftovers(runs: list[Run]) -> None:
    """Whatever a failed case left: only these runs' own processes, by pid."""
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)
        for q in run.tree[1:]:
            if alive(q):
                with contextlib.suppress(psutil.Error):
                    q.kill()


def signal_each(name: str, broker: str, runs: list[Run], down: Callable[[], None]) -> None:
    """Collect each run's tree, take the broker away if asked, signal the runs one by
    one and check each stop."""
    for run in runs:
        collect(run)
        assert run.ports or name in NO_PORT, f"{name} listened on no port"
    if broker != "up":
        down()
        time.sleep(1.0)  # the clients notice
    try:
        for run, sig in zip(runs, SIGNALS, strict=True):
            took = stop_seconds(run, sig)
            TIMES[(name, signal.Signals(sig).name, broker)] = took
            text = run.text()
            why = f"{name} {signal.Signals(sig).name} broker {broker}: {took:.1f}s\n{text[-4000:]}"
            left = [q for q in run.tree[1:] if alive(q)]
            assert took <= WITHIN, f"{why}\nleft: {left}"
            assert run.proc.returncode == 0, why
            assert "exiting now" not in text, why  # the stop was clean, not the deadline's
    finally:
        kill_leftovers(runs)


#: Commands that may listen on no port (a metrics port is 0 = any free, but optional).
NO_PORT = {"replay", "record"}


#: How a broker is taken away.
AWAY = {"killed": signal.SIGKILL, "frozen": signal.SIGSTOP}


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    broker = Tansu(tmp_path / "tansu")
    broker.start()
    yield broker
    if broker.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker.pid, signal.SIGKILL)  # frozen, it would not hear SIGTERM
    broker.stop()


def broker_for(broker: str, kafka_bootstrap: str, tansu: Tansu) -> tuple[str, Callable[[], None]]:
    """Where the commands' Kafka is (the session's, or one of their own to take away),
    and how to take it away."""
    if broker == "up":
        return kafka_bootstrap, lambda: None

    def down() -> None:
        assert tansu.pid is not None
        os.kill(tansu.pid, AWAY[broker])

    return tansu.bootstrap, down


def settings_for(settings: Settings, bootstrap: str, i: int) -> Settings:
    return isolated(settings, f"sig{i}").replace(kafka={"bootstrap_servers": bootstrap})


def logged(needle: str) -> Callable[[Run], bool]:
    return lambda run: needle in run.text()


def has_messages(s: Settings) -> Callable[[Run], bool]:
    """The replay has sent its first messages."""

    def probe(_: Run) -> bool:
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(**s.kafka.client_kwargs())
        try:
            parts = [
                TopicPartition(t, p)
                for t in s.topics.sensors
                for p in c.partitions_for_topic(t) or ()
            ]
            return bool(parts) and sum(c.end_offsets(parts).values()) > 0
        finally:
            c.close()

    return probe


def command_case(name: str, s: Settings, tmp: Path) -> tuple[list[str], Callable[[Run], bool]]:
    """The command line of ``name`` and how to tell it is at work."""
    if name == "process":
        return ["process"], logged("Worker ready")
    if name == "sink":
        return ["sink"], logged("(group ")
    if name == "sensors":
        argv = ["sensors", "--citizens", "30", "--days", "30", "--speed", "3600"]
        return argv, logged("sensors metrics:")
    if name == "dashboard":
        port = free_port()
        return ["dashboard", "--port", str(port)], lambda run: port_open("127.0.0.1", port)
    if name == "replay":
        return ["replay", str(GOLDEN), "--speed", "600"], has_messages(s)
    if name == "record":
        from producers.publisher import ensure_topics

        ensure_topics(s)
        out = tmp / "recording"
        return ["record", "--out", str(out)], lambda run: any(out.glob("*.avro"))
    raise AssertionError(name)


@pytest.mark.parametrize("broker", ["up", "killed", "frozen"])
@pytest.mark.parametrize("name", ["process", "sink", "sensors", "dashboard", "replay", "record"])
def test_a_command_stops_cleanly_on_each_signal(
    name: str, broker: str, settings: Settings, kafka_bootstrap: str, tansu: Tansu, tmp_path: Path
) -> None:
    bootstrap, down = broker_for(broker, kafka_bootstrap, tansu)
    runs = []
    try:
        for i, _ in enumerate(SIGNALS):
            s = settings_for(settings, bootstrap, i)
            (tmp_path / str(i)).mkdir()
            argv, ready = command_case(name, s, tmp_path / str(i))
            runs.append(launch(argv, child_env(s), tmp_path / f"{name}-{i}.log", ready))
        wait_ready(runs)
    except BaseException:
        kill_leftovers(runs)
        raise
    signal_each(name, broker, runs, down)
    if name == "record":  # stopped cleanly: the recording is whole
        assert all((tmp_path / str(i) / "recording" / "manifest.json").exists() for i in (0, 1, 2))


# --- the demo ---------------------------------------------------------------------------


def demo_env() -> dict[str, str]:
    """The demo on its own embedded broker and PostgreSQL, as a new user runs it."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def start_demo(log: Path, port: int | None = None) -> Run:
    port = port or free_port()
    argv = ["demo", "--citizens", "20", "--days", "1", "--speed", "20000", "--scenario", "none"]
    argv += ["--broker", "embedded", "--port", str(port)]
    run = launch(
        argv,
        demo_env(),
        log,
        lambda run: port_open("127.0.0.1", port) and "logs in " in run.text(),
    )
    run.port = port
    return run


def workdir_of(run: Run) -> str:
    found = re.search(r"logs in (\S+)", run.text())
    assert found, run.text()
    return found.group(1)


def with_postgres(run: Run) -> None:
    """Its PostgreSQL is no child of the demo (pg_ctl detaches it): found by its data
    directory, under the demo's work directory."""
    workdir = workdir_of(run)
    run.also = lambda q: any(workdir in a for a in q.cmdline())


def demo_broker(run: Run) -> psutil.Process:
    (tansu,) = [q for q in psutil.Process(run.proc.pid).children() if "tansu" in q.name()]
    return tansu


@pytest.mark.parametrize("broker", ["up", "killed"])
def test_the_demo_stops_cleanly_on_each_signal(broker: str, tmp_path: Path) -> None:
    runs = [start_demo(tmp_path / f"demo-{i}.log") for i, _ in enumerate(SIGNALS)]
    try:
        wait_ready(runs)
        for run in runs:
            with_postgres(run)
        brokers = [demo_broker(run) for run in runs]
    except BaseException:
        kill_leftovers(runs)
        raise

    def down() -> None:
        for b in brokers:
            b.kill()

    signal_each("demo", broker, runs, down)
    assert all("no process left behind" in run.text() for run in runs)


def test_kill_9_of_the_demo_leaves_no_child_and_the_next_demo_starts(tmp_path: Path) -> None:
    first = start_demo(tmp_path / "first.log")
    try:
        wait_ready([first])
        with_postgres(first)
        collect(first)
        assert len(first.tree) >= 6, first.tree  # demo, Tansu, postmaster, worker, sink, …
        started = time.monotonic()
        first.proc.kill()
        while time.monotonic() - started < WATCH:
            if not any(alive(q) for q in first.tree[1:]) and not any(
                port_open("127.0.0.1", p) for p in first.ports
            ):
                break
            time.sleep(0.05)
        took = time.monotonic() - started
        TIMES[("demo", "SIGKILL", "up")] = took
        assert took <= WITHIN, [q for q in first.tree[1:] if alive(q)]
    finally:
        kill_leftovers([first])
    following = start_demo(tmp_path / "next.log", port=first.port)
    try:
        wait_ready([following])
        assert "harvester ready" in following.text()
    finally:
        following.proc.send_signal(signal.SIGTERM)
        assert following.proc.wait(WITHIN + 5) == 0, following.text()[-3000:]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_stack_up_stopped_while_starting_leaves_nothing_running(sig: int, tmp_path: Path) -> None:
    """``stack up`` does not stay in the foreground: it starts the services in the
    background and returns. Stopped while PostgreSQL is starting (Tansu already up), it
    stops what it had started and records nothing."""
    home = tmp_path / "stack"

    def starting_postgres(run: Run) -> bool:
        names = {q.name() for q in psutil.Process(run.proc.pid).children(recursive=True)}
        return bool(names & {"initdb", "pg_ctl", "postgres"})

    run = launch(
        ["stack", "up", "--home", str(home), "--broker", "embedded"],
        demo_env(),
        tmp_path / "stack-up.log",
        starting_postgres,
    )
    run.also = lambda q: any(str(home) in a for a in q.cmdline())
    try:
        wait_ready([run])
        collect(run)
        assert any("tansu" in q.name() for q in run.tree), run.tree
        took = stop_seconds(run, sig)
        TIMES[("stack up (starting)", signal.Signals(sig).name, "up")] = took
        assert took <= WITHIN, [q for q in run.tree[1:] if alive(q)]
        assert run.proc.returncode == 1
        assert "stopped before the stack was up" in run.text()
        state = json.loads((home / "state.json").read_text())
        assert state["services"] == []
    finally:
        kill_leftovers([run])


@pytest.fixture(scope="module", autouse=True)
def times_table() -> Iterator[None]:
    """The signal-test table, in tests/artifacts/signals.md (and printed with -s)."""
    yield
    if not TIMES:
        return
    states = ["up", "killed", "frozen"]
    rows = [
        "| command | signal | " + " | ".join(f"broker {b}" for b in states) + " |",
        "|---|---|" + "---:|" * len(states),
    ]
    for name, sig in sorted({(n, s) for n, s, _ in TIMES}):
        took = [TIMES.get((name, sig, b)) for b in states]
        rows.append(
            f"| {name} | {sig} | " + " | ".join(f"{t:.1f}" if t else "" for t in took) + " |"
        )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "signals.md").write_text("\n".join(rows) + "\n")
    print("\n" + "\n".join(rows))
