"""The compose tests' fixtures: compose-go's loader, built once, and the loaded project."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.compose.project import HERE, STACKS, load


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
