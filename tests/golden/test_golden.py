"""The committed golden recording: the simulation still writes it byte for byte, and the
oracle still computes the committed expected profiles from it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.golden.make_golden import EXPECTED, RECORDING, profiles, simulate
from tests.moisson.ops.test_recording import tree_digest


def test_simulation_reproduces_the_golden_recording(tmp_path: Path):
    simulate(tmp_path / "again")
    assert tree_digest(tmp_path / "again") == tree_digest(RECORDING), (
        "the simulation changed; if on purpose, run tests/golden/make_golden.py"
    )


def test_oracle_gives_the_committed_profiles():
    assert profiles(RECORDING) == json.loads(EXPECTED.read_text()), (
        "the fold or the rules changed; if on purpose, run tests/golden/make_golden.py"
    )


def test_the_golden_city_has_a_blacklist_and_refusals():
    expected = json.loads(EXPECTED.read_text())
    assert any(p["blacklisted"] for p in expected.values())
    assert any(p["denied_count"] for p in expected.values())
