"""The compose tests' fixtures: compose-go's loader, built once, and the loaded project;
for the docker tests, the engine, Compose v2, the images and the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moisson.settings import Settings
from tests.compose.engine import DOCKER, compose_plugin, engine, run
from tests.compose.images import build_all, python_base
from tests.compose.project import HERE, ROOT, STACKS, load
from tests.compose.report import summary

REPORT = ROOT / "tests" / "artifacts" / "compose-report.json"
_REPORTED: list[dict[str, Any]] = []


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/compose/ is marked ``compose``: the loader needs Go, so
    ``make unit`` (``-m "… and not compose"``) leaves them out; ``make test`` runs them."""
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.compose)


@pytest.fixture(scope="session")
def loader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """compose-go's loader as a binary (go build; modules pinned by go.sum)."""
    go = shutil.which("go")
    assert go, "the compose tests need Go (https://go.dev/dl/) to build compose-go's loader"
    binary = tmp_path_factory.mktemp("compose-load") / "load"
    res = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=HERE / "load",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    return binary


@pytest.fixture(scope="session", params=sorted(STACKS))
def project(request: pytest.FixtureRequest, loader: Path) -> dict[str, Any]:
    """The normalised project for the single-broker stack and for the cluster."""
    p = load(loader, *STACKS[request.param])
    p["stack"] = request.param
    return p


@pytest.fixture(scope="session")
def report() -> Iterator[dict[str, Any]]:
    """What the docker tests found, written to tests/artifacts/compose-report.json."""
    found: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    yield found
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(found, indent=2) + "\n")
    _REPORTED.append(found)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for found in _REPORTED:
        terminalreporter.section(f"compose report ({REPORT.relative_to(ROOT)})")
        for line in summary(found):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def docker_env(
    tmp_path_factory: pytest.TempPathFactory, report: dict[str, Any]
) -> Iterator[dict[str, str]]:
    """An engine, Compose v2 and every image the stack needs; the env to reach them."""
    cache = Settings().stack.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    workdir = tmp_path_factory.mktemp("docker")
    started = time.monotonic()
    env = {
        **os.environ,
        "DOCKER_CONFIG": str(compose_plugin(cache)),
        "DOCKER_BUILDKIT": "0",  # the classic builder: BuildKit needs buildx, absent here
    }
    report["compose_plugin_s"] = round(time.monotonic() - started, 1)
    with engine(workdir, env) as how:
        report["engine"] = how
        report["compose"] = run([DOCKER, "compose", "version", "--short"], env=env).stdout.strip()
        took = build_all(workdir, cache, env)
        report["standin_build_s"] = {k: round(v, 1) for k, v in took.items()}
        report["python_base"] = python_base(env)
        yield env
