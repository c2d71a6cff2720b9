"""Importing the processor's app and agents does nothing: no settings, no directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import moisson.settings as s

def boom(*a, **k):
    raise SystemExit("the settings were read at import")

s.Settings.__init__ = boom
import processors.app, processors.agents
"""


def test_importing_the_app_reads_no_settings_and_creates_no_directory(tmp_path: Path) -> None:
    data = tmp_path / "faust-data"
    env = {**os.environ, "PROCESSOR_DATA_DIR": str(data)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not data.exists()


def test_the_probe_can_fail(tmp_path: Path) -> None:
    """The same probe on the worker entry point, which does build from the env, fails."""
    probe = PROBE.replace(
        "import processors.app, processors.agents", "import processors.worker as w; w.app"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "the settings were read at import" in done.stderr
