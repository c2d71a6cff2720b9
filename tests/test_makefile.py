"""`make help` lists every target of the Makefile with its one-line ``##`` description."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.moisson.cli.test_lesson_commands import make_targets

ROOT = Path(__file__).parents[1]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def commands() -> set[str]:
    """The targets a user types: every rule's target but make's special ones (``.PHONY``)
    and the files a rule makes (``$(VENV)/.installed``)."""
    return {t for t in make_targets(MAKEFILE) if not t.startswith(".") and "/" not in t}


def described() -> dict[str, str]:
    """Target -> the ``##`` description on its rule's line."""
    return dict(re.findall(r"^([A-Za-z0-9_-]+):[^\n]*?## (.+)$", MAKEFILE, re.MULTILINE))


def test_every_target_has_a_one_line_description():
    descriptions = described()
    assert commands(), "no target found"
    missing = sorted(commands() - descriptions.keys())
    assert not missing, f"targets without a `## description`: {missing}"
    assert all(d.strip() for d in descriptions.values())


def test_every_target_is_phony():
    declared = re.search(r"^\.PHONY:(.*)$", MAKEFILE, re.MULTILINE)
    assert declared
    phony = set(declared.group(1).split())
    assert commands() == phony


def test_make_help_lists_every_target_with_its_description():
    res = subprocess.run(
        ["make", "-s", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    listed = dict(line.split(None, 1) for line in res.stdout.splitlines() if line.strip())
    assert set(listed) == commands()
    for target, description in described().items():
        assert listed[target] == description
