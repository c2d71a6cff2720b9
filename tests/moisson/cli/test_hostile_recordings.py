"""Hostile recordings through the real CLI, in a child process: each is refused with
one ``error:`` line and a ``fix:`` line, exit 1, no connection to Kafka at all (so
nothing is sent), and under 200 MB of memory (the child's own peak RSS, from wait4)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from moisson.ops.recording import Message, RecordingWriter
from tests.moisson.ops.hostile_recordings import HOSTILE, TOPIC, build, edit_manifest, simulate

MEMORY_LIMIT_MB = 200
TOPIC_ESCAPES = {"topic-sanctions", "topic-doubles"}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    peak_mb: float


class Broker:
    """A TCP listener standing in for Kafka: it counts the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    yield b
    b.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every hostile recording, built once for the module."""
    root = tmp_path_factory.mktemp("hostile")
    return {name: build(name, root / name.replace("^", "")) for name in HOSTILE}


#: Runs ``python -m moisson ARGS`` as its child and writes the child's peak RSS (KiB).
#: A small process of its own, because a child's peak counts the memory of the process
#: it was forked from, and pytest's may be large.
LAUNCHER = """
import os, sys
pid = os.spawnv(os.P_NOWAIT, sys.executable, [sys.executable, "-m", "moisson", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def moisson(args: list[str], cwd: Path, timeout: float = 120) -> Run:
    """``python -m moisson ARGS`` in a child; its exit code, output and peak RSS."""
    out, err, rss = cwd / "stdout.txt", cwd / "stderr.txt", cwd / "rss.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOPICS_", "REPLAY_"))}
    with open(out, "wb") as o, open(err, "wb") as e:
        command = [sys.executable, "-c", LAUNCHER, str(rss), *args]
        proc = subprocess.Popen(command, stdout=o, stderr=e, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return Run(code, out.read_text(), err.read_text(), int(rss.read_text()) / 1024)


def assert_refused(run: Run, broker: Broker, why: str) -> None:
    lines = run.stderr.splitlines()
    assert run.code == 1, run.stderr
    assert len(lines) == 2, run.stderr
    assert lines[0].startswith("error: ") and why in lines[0], run.stderr
    assert lines[1].startswith("fix: "), run.stderr
    assert run.stdout == ""
    assert broker.connections == 0, "the CLI reached for Kafka before refusing"
    assert run.peak_mb < MEMORY_LIMIT_MB, f"peak RSS {run.peak_mb:.0f} MB"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_replay_refuses(name: str, hostile: dict[str, Path], broker: Broker, tmp_path: Path):
    args = ["replay", str(hostile[name]), "--kafka", broker.address, "--topic-prefix", "h."]
    assert_refused(moisson(args, tmp_path), broker, HOSTILE[name])


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - TOPIC_ESCAPES))
def test_whatif_refuses(name: str, hostile: dict[str, Path], broker: Broker, tmp_path: Path):
    args = ["whatif", "--recording", str(hostile[name]), "--set", "camera.association=0"]
    assert_refused(moisson(args, tmp_path), broker, HOSTILE[name])


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - TOPIC_ESCAPES))
def test_verify_refuses(name: str, hostile: dict[str, Path], broker: Broker, tmp_path: Path):
    args = ["verify", str(hostile[name]), "--kafka", broker.address]
    args += ["--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    assert_refused(moisson(args, tmp_path), broker, HOSTILE[name])


def test_a_mapped_topic_is_replayed_under_the_prefix(
    hostile: dict[str, Path], broker: Broker, tmp_path: Path
):
    """--topic-map names the sanctions topic: the dry run sends it to prefix + NEW,
    without Kafka."""
    rec = str(hostile["topic-sanctions"])
    args = ["replay", rec, "--kafka", broker.address, "--topic-prefix", "h.", "--dry-run"]
    run = moisson([*args, "--topic-map", "sanctions=old.sanctions"], tmp_path)
    assert run.code == 0, run.stderr
    assert sent_to(run.stdout) == {"h.old.sanctions", "h.sensors.metro"}
    assert broker.connections == 0
    only = moisson([*args, "--sensor", "metro"], tmp_path)
    assert only.code == 0, only.stderr
    assert sent_to(only.stdout) == {"h.sensors.metro"}


def sent_to(dry_run: str) -> set[str]:
    """The destination topics a dry run lists (``+at s TOPIC[partition] key=…``)."""
    return set(re.findall(r"s (\S+)\[\d+\] key=", dry_run))


def test_dry_run_needs_no_kafka(tmp_path: Path):
    rec = simulate(tmp_path / "rec")
    run = moisson(["replay", str(rec), "--kafka", "127.0.0.1:1", "--dry-run"], tmp_path)
    assert run.code == 0, run.stderr
    assert "messages would be sent" in run.stderr
    assert run.stdout.count("sensors.") > 0


def test_without_dry_run_an_unreachable_kafka_is_one_error(tmp_path: Path):
    rec = simulate(tmp_path / "rec")
    run = moisson(["replay", str(rec), "--kafka", "127.0.0.1:1"], tmp_path)
    assert run.code == 1
    lines = run.stderr.splitlines()
    assert lines[0].startswith("error: ") and "127.0.0.1:1" in lines[0], run.stderr
    assert lines[1].startswith("fix: ")


@pytest.mark.parametrize("name", ["../[/]\x1b[31mred", "[bold]x\x07.avro"])
def test_names_from_a_recording_reach_the_terminal_escaped(
    name: str, broker: Broker, tmp_path: Path
):
    """Rich markup and control characters in a manifest's file name are printed as
    text: no crash on a stray [/], no escape sequence for the terminal."""
    rec = simulate(tmp_path / "rec")
    edit_manifest(rec, lambda m: m["topics"][TOPIC].update(file=name))
    for args in (
        ["replay", str(rec), "--kafka", broker.address],
        ["whatif", "--recording", str(rec), "--set", "camera.association=0"],
    ):
        run = moisson(args, tmp_path)
        assert_refused(run, broker, "[")
        assert "\x1b" not in run.stderr and "\x07" not in run.stderr
        assert "\\x1b[31m" in run.stderr or "\\x07" in run.stderr


def test_a_dry_run_prints_a_recorded_key_as_text(tmp_path: Path):
    w = RecordingWriter(tmp_path / "rec", {TOPIC: 1}, kinds={TOPIC: "metro"}, source="record")
    w.write(Message(TOPIC, 0, 0, 1, b"[/]\x1b[2J", b"v"))
    w.close()
    run = moisson(["replay", str(tmp_path / "rec"), "--dry-run"], tmp_path)
    assert run.code == 0, run.stderr
    assert "key=b'[/]\\x1b[2J'" in run.stdout and "\x1b" not in run.stdout
