"""Importing the processor's app, agents and harvester does no work: it reads no
settings, creates no directory and builds no faust App."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]

# Any settings read, or any faust App built, fails the import before it can finish.
PROBE = """
import faust
import moisson.settings as s

def boom(*a, **k):
    raise SystemExit("the settings were read at import")

def no_app(*a, **k):
    raise SystemExit("a faust App was built at import")

s.Settings.__init__ = boom
faust.App.__init__ = no_app
{imports}
print("inert")
"""


def probe(tmp_path: Path, imports: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    data = tmp_path / "faust-data"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PROCESSOR_DATA_DIR": str(data),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, data


@pytest.mark.parametrize(
    "module",
    [
        "processors.engine.app",
        "processors.engine.agent",
        "processors.engine.agent",
        "processors.engine.outbox",
        "processors.engine.faust_patches",
        "processors.worker",
    ],
)
def test_importing_reads_no_settings_creates_no_directory_builds_no_app(
    tmp_path: Path, module: str
) -> None:
    done, data = probe(tmp_path, f"import {module}")
    assert done.returncode == 0 and "inert" in done.stdout, done.stdout + done.stderr
    assert not data.exists()
    assert list((tmp_path / "cwd").iterdir()) == []  # not even .moisson/ in the cwd


def test_the_probe_can_fail(tmp_path: Path) -> None:
    """The worker entry point, asked for its app, does read the environment."""
    done, _ = probe(tmp_path, "import processors.worker as w; w.app")
    assert done.returncode != 0
    assert "the settings were read at import" in done.stderr


def test_the_app_probe_can_fail(tmp_path: Path) -> None:
    """Building the app, given settings made before the probe's patch, is seen too."""
    imports = (
        "from processors.engine.app import create_app\ncreate_app(s.Settings.model_construct())"
    )
    done, _ = probe(tmp_path, imports)
    assert done.returncode != 0
    assert "a faust App was built at import" in done.stderr
