"""``moisson whatif`` as a user types it: the comparison, its JSON, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from moisson.cli import main

SMALL = ["--citizens", "40", "--days", "7"]


def invoke(*args: str):
    return CliRunner().invoke(main, ["whatif", *args], env={"COLUMNS": "200"})


def test_without_association_lulu_would_be_free_and_it_says_why(tmp_path: Path):
    res = invoke("--set", "camera.association=0", *SMALL, "--json", str(tmp_path / "w.json"))
    assert res.exit_code == 0, res.output
    assert "Re-simulated under each rulebook" in res.output
    assert "1 citizen(s) would be free" in res.output
    assert "Lulu 露露" in res.output and "camera.association 3× -45 → 0× +0" in res.output
    data = json.loads((tmp_path / "w.json").read_text())
    (lulu,) = [c for c in data["changes"] if c["name"].startswith("Lulu")]
    assert lulu["kind"] == "freed" and lulu["refused"] == [2, 0]
    assert data["rules"] == [{"rule": "camera.association", "live": -15, "variant": 0}]
    assert data["variant"]["blacklisted"] == data["live"]["blacklisted"] - 1


def test_a_variant_file_and_sets_combine(tmp_path: Path):
    shipped = Path(__file__).parents[3] / "processors" / "rules.toml"
    variant = tmp_path / "variant.toml"
    variant.write_text(shipped.read_text().replace("delta = -30", "delta = 0", 1))
    res = invoke("--rules", str(variant), "--set", "correlation.banned-book-and-protest=0", *SMALL)
    assert res.exit_code == 0, res.output
    assert "book.banned" in res.output and "correlation.banned-book-and-protest" in res.output


def test_errors_are_one_line_with_a_fix():
    res = invoke(*SMALL)
    assert res.exit_code == 1 and "nothing to compare" in res.output and "fix:" in res.output
    res = invoke("--set", "camera.nope=0", *SMALL)
    assert res.exit_code == 1 and "no rule 'camera.nope'" in res.output
    assert "moisson rules" in res.output
    res = invoke("--set", "camera.association", *SMALL)
    assert res.exit_code == 1 and "RULE=DELTA" in res.output


def test_help_teaches_the_set_syntax_and_shows_env_vars():
    res = invoke("--help")
    assert res.exit_code == 0
    assert "--set camera.association=0" in res.output and "WHATIF_SET" in res.output
    assert "baked in" in res.output
