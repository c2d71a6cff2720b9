"""The what-if lab on Lulu's week: re-simulated, the feedback follows the variant rules;
re-scored from a recording, the recorded sanctions stay."""

from __future__ import annotations

from pathlib import Path

from moisson.ops.recording import write_simulation
from moisson.ops.whatif import RESCORED, rescore, simulate
from processors.core.fold import default_rules
from processors.core.oracle import Oracle
from producers.city import City
from schemas.kinds import SENSOR_KINDS

RULES = default_rules()
NO_ASSOCIATION = RULES.with_deltas({"camera.association": 0})


def lulu_id(citizens: int) -> str:
    return City(42, citizens, scenario="lulu").cast["lulu"].id


def test_without_guilt_by_association_lulu_is_free_and_no_gate_refuses_her():
    w = simulate(42, 40, 7, RULES, NO_ASSOCIATION)
    lulu = lulu_id(40)
    assert w.live.doubles[lulu]["blacklisted"] and w.live.doubles[lulu]["denied_count"] == 2
    (freed,) = [c for c in w.of_kind("freed") if c.citizen_id == lulu]
    assert w.names[lulu].startswith("Lulu")
    assert freed.refused == (2, 0), "re-simulated: the gate and the ticket office let her by"
    why = {e.rule_id: (e.before, e.after) for e in freed.why}
    assert why["camera.association"] == ((3, -45), (0, 0))
    assert why["metro.denied"] == ((1, 0), (0, 0))
    assert w.variant.distribution.blacklisted == w.live.distribution.blacklisted - 1
    assert w.rules == [("camera.association", -15, 0)]


def test_a_recording_is_only_re_scored_and_says_so(tmp_path: Path):
    events = City(42, 40, scenario="lulu").events(7, Oracle())
    topics = {k: f"sensors.{k}" for k in SENSOR_KINDS}
    write_simulation(tmp_path / "rec", events, 2, {"seed": 42}, topics)
    w = rescore(tmp_path / "rec", RULES, NO_ASSOCIATION)
    lulu = lulu_id(40)
    (freed,) = [c for c in w.of_kind("freed") if c.citizen_id == lulu]
    assert freed.refused == (2, 2), "the recorded refusals are baked in"
    assert w.note == RESCORED and "baked in" in w.note
    assert w.mode == "recording" and w.live.events == w.variant.events > 1000
