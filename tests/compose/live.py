"""A compose project on a real engine, as the compose test drives it (`make compose-test`)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.compose.engine import DOCKER, EngineError
from tests.compose.project import ROOT

#: Services that run once and exit 0 when done; every other one ends "healthy".
ONE_SHOT = {"topics"}


@dataclass
class Compose:
    """`docker compose -p NAME -f …` with the test's environment."""

    name: str
    files: list[Path]
    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        files = [a for f in self.files for a in ("-f", str(f))]
        return [DOCKER, "compose", "-p", self.name, *files, *args]

    def __call__(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            self.argv(*args), capture_output=True, text=True, env=self.env, cwd=ROOT,
            timeout=timeout,
        )  # fmt: skip
        if res.returncode != 0:
            raise EngineError(
                f"docker compose {' '.join(args)} exited {res.returncode}:\n"
                f"{(res.stdout + res.stderr)[-4000:]}"
            )
        return res

    def ps(self) -> list[dict[str, Any]]:
        """Every container of the project, running or not (compose's JSON, one per line)."""
        out = self("ps", "-a", "--format", "json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def states(self) -> dict[str, str]:
        """Container name -> "healthy", "exited (0)", "running"…"""
        return {c["Name"]: _state(c) for c in self.ps()}

    def service_of(self) -> dict[str, str]:
        """Container name -> its service."""
        return {c["Name"]: c["Service"] for c in self.ps()}

    def wait_ready(self, timeout: float, *only: str) -> tuple[float, dict[str, str]]:
        """Seconds until every container (of the services ``only``, if given) is healthy
        (one-shots: exited 0), and the states.

        Fails at once on an unhealthy container or one that exited non-zero.
        """
        started = time.monotonic()
        while True:
            containers = [c for c in self.ps() if not only or c["Service"] in only]
            states = {c["Name"]: _state(c) for c in containers}
            service = {c["Name"]: c["Service"] for c in containers}
            bad = {
                n: s for n, s in states.items()
                if s == "unhealthy" or (s.startswith("exited") and s != "exited (0)")
            }  # fmt: skip
            if bad:
                raise EngineError(f"not ready: {bad}\n{self.logs(*bad)}")
            ready = states and all(
                s == "exited (0)" if service[n] in ONE_SHOT else s == "healthy"
                for n, s in states.items()
            )
            if ready:
                return time.monotonic() - started, states
            if time.monotonic() - started > timeout:
                raise EngineError(f"not ready after {timeout:.0f}s: {states}")
            time.sleep(1)

    def logs(self, *containers: str, tail: int = 40) -> str:
        out = []
        for c in containers:
            res = subprocess.run(
                [DOCKER, "logs", "--tail", str(tail), c], capture_output=True, text=True,
                env=self.env,
            )  # fmt: skip
            out.append(f"--- {c}\n{res.stdout}{res.stderr}")
        return "\n".join(out)

    def inspect(self, container: str) -> dict[str, Any]:
        res = subprocess.run(
            [DOCKER, "inspect", container], capture_output=True, text=True, env=self.env
        )
        return dict(json.loads(res.stdout)[0])


def _state(container: dict[str, Any]) -> str:
    if container["State"] == "exited":
        return f"exited ({container['ExitCode']})"
    return str(container.get("Health") or container["State"])


@dataclass
class Stops:
    """The engine's kill and die events while a block runs: who was SIGKILLed."""

    env: dict[str, str]
    events: list[dict[str, str]] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def __enter__(self) -> Stops:
        fmt = "{{json .Actor.Attributes}}|{{.Action}}"
        self._proc = subprocess.Popen(
            [DOCKER, "events", "--filter", "type=container", "--format", fmt],
            stdout=subprocess.PIPE, text=True, env=self.env,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        time.sleep(0.5)  # the subscription is live before the block acts
        return self

    def _read(self) -> None:
        assert self._proc and self._proc.stdout
        for line in self._proc.stdout:
            attrs, _, action = line.strip().rpartition("|")
            if action in ("kill", "die"):
                self.events.append({**json.loads(attrs), "action": action})

    def __exit__(self, *exc: object) -> None:
        time.sleep(1)
        assert self._proc
        self._proc.terminate()
        self._proc.wait(timeout=10)

    def killed_after_grace(self) -> list[str]:
        """Containers that got SIGKILL or died of it (137): they ignored SIGTERM."""
        return sorted(
            {
                e["name"]
                for e in self.events
                if e.get("signal") in ("9", "SIGKILL") or e.get("exitCode") == "137"
            }
        )


def keep_logs(compose: Compose, stack: str) -> None:
    """Every container's log, in tests/artifacts (the containers go with `down`)."""
    res = compose("logs", "--no-color", "--timestamps")
    out = ROOT / "tests" / "artifacts" / f"compose-{stack}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(res.stdout + res.stderr)


@contextmanager
def stack_up(compose: Compose, stack: str, got: dict[str, Any], timeout: float) -> Iterator[None]:
    """`up --build -d` until ready (``got["states"]``, ``got["ready_s"]``); logs kept and
    the project removed with its volumes whatever happens."""
    compose("down", "-v", "--remove-orphans")  # what an interrupted run left
    started = time.monotonic()
    try:
        compose("up", "--build", "-d")
        _, got["states"] = compose.wait_ready(timeout=timeout)
        got["ready_s"] = round(time.monotonic() - started, 1)
        yield
    finally:
        keep_logs(compose, stack)
        compose("down", "-v", "--remove-orphans")


def down_cleanly(compose: Compose, stack: str, got: dict[str, Any]) -> list[str]:
    """`down -v`, timed into ``got["down_s"]``; the containers killed after their grace."""
    keep_logs(compose, stack)
    with Stops(compose.env) as stops:
        started = time.monotonic()
        compose("down", "-v")
        got["down_s"] = round(time.monotonic() - started, 1)
    return stops.killed_after_grace()
