"""A Docker engine and Compose v2 for the compose test (`make compose-test`).

The engine is Debian's ``docker.io`` (the Makefile installs it): when no engine answers,
``dockerd`` is started here with its defaults and stopped at the end. The client is
Debian's ``/usr/bin/docker``: a newer client without buildx cannot build at all
(BuildKit needs the buildx plugin), while Debian's builds with the classic builder.
Compose v2 is built from its Go module at a pinned version, into the cache, once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The last Compose v2 release; its internal builder is used when buildx is absent.
COMPOSE_VERSION = "v2.40.3"
COMPOSE_MODULE = "github.com/docker/compose/v2"
DOCKER = "/usr/bin/docker"


class EngineError(RuntimeError):
    """The engine could not be had; the message ends with what to do."""


def run(argv: list[str], timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run argv, text output captured; raise with its output when it fails."""
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise EngineError(
            f"`{' '.join(argv[:4])}…` exited {res.returncode}:\n{(res.stdout + res.stderr)[-3000:]}"
        )
    return res


def compose_plugin(cache: Path) -> Path:
    """A DOCKER_CONFIG directory whose cli-plugins hold Compose COMPOSE_VERSION."""
    home = cache / f"compose-{COMPOSE_VERSION}"
    binary = home / "cli-plugins" / "docker-compose"
    if binary.exists():
        return home
    go = shutil.which("go")
    if go is None:
        raise EngineError("Compose v2 is built from source here: install Go (https://go.dev/dl/)")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "go.mod").write_text("module fetch\n\ngo 1.24\n")
        got = run([go, "mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"], cwd=tmp)
        src = Path(tmp) / "compose"
        shutil.copytree(json.loads(got.stdout)["Dir"], src)
        for path in src.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        flags = f"-s -w -X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        run(
            [go, "build", "-trimpath", "-ldflags", flags, "-o", str(partial), "./cmd"],
            cwd=src,
            env={**os.environ, "CGO_ENABLED": "0"},
            timeout=1200,
        )
        partial.rename(binary)
    return home


def answers(env: dict[str, str]) -> bool:
    """True when the engine answers `docker info`."""
    res = subprocess.run([DOCKER, "info"], capture_output=True, env=env, timeout=30)
    return res.returncode == 0


@contextmanager
def engine(workdir: Path, env: dict[str, str]) -> Iterator[str]:
    """The engine: the running one, or a dockerd started here and stopped on exit.

    Yields how it was had, for the report.
    """
    if not Path(DOCKER).exists() or shutil.which("dockerd") is None:
        raise EngineError("no Docker engine: `make compose-test` installs Debian's docker.io")
    if answers(env):
        yield "an engine already running"
        return
    if os.geteuid() != 0:
        raise EngineError("dockerd needs root: run `make compose-test` as root, or start Docker")
    log = (workdir / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        ["dockerd", "--pidfile", str(workdir / "dockerd.pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not answers(env):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise EngineError(f"dockerd did not start; its log: {workdir / 'dockerd.log'}")
            time.sleep(0.5)
        version = run([DOCKER, "version", "--format", "{{.Server.Version}}"], env=env)
        yield f"dockerd {version.stdout.strip()}, started by the test"
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
