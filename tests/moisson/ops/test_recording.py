"""Recordings: deterministic simulation, validation, and replay planning."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from moisson.ops.recording import (
    Message,
    RecordingError,
    RecordingWriter,
    open_recording,
    write_simulation,
)
from moisson.ops.replay import plan_replay, schedule
from moisson.settings import SENSOR_KINDS, Settings
from processors.core.oracle import Oracle
from producers.city import generate_events

TOPICS = {k: f"sensors.{k}" for k in SENSOR_KINDS}


def simulate(out: Path, seed=3, citizens=60, days=1, partitions=4) -> dict:
    events = generate_events(seed, citizens, days=days, sanctions=Oracle())
    return write_simulation(out, events, partitions, {"seed": seed}, TOPICS)


def tree_digest(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_simulate_is_byte_identical(tmp_path: Path):
    simulate(tmp_path / "a")
    simulate(tmp_path / "b")
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    simulate(tmp_path / "c", seed=4)
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


def test_manifest_describes_the_recording(tmp_path: Path):
    m = simulate(tmp_path / "r")
    assert m["version"] == 1 and m["seed"] == 3 and m["source"] == "simulate"
    assert set(m["topics"]) == set(TOPICS.values())
    assert m["count"] == sum(t["count"] for t in m["topics"].values())
    assert all(t["partitions"] == 4 and t["kind"] for t in m["topics"].values())
    assert set(m["schema_fingerprints"].values()) >= {"org.moisson.sensors.MetroPassage"}
    rec = open_recording(tmp_path / "r")
    rec.check()
    msgs = rec.all_messages()
    assert len(msgs) == m["count"]
    assert [x.timestamp for x in msgs] == sorted(x.timestamp for x in msgs)


def test_partitions_and_offsets_are_what_kafka_would_assign(tmp_path: Path):
    from kafka.partitioner.default import murmur2

    simulate(tmp_path / "r")
    rec = open_recording(tmp_path / "r")
    for topic in rec.topics:
        seen: dict[int, int] = {}
        for msg in rec.messages(topic):
            assert msg.partition == (murmur2(msg.key) & 0x7FFFFFFF) % 4
            assert msg.offset == seen.get(msg.partition, 0)
            seen[msg.partition] = msg.offset + 1


def test_a_changed_file_is_refused_by_name(tmp_path: Path):
    simulate(tmp_path / "r")
    f = tmp_path / "r" / "sensors.book.avro"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(RecordingError, match=r"sensors\.book\.avro: sha256"):
        open_recording(tmp_path / "r")


def test_a_truncated_file_is_refused_by_name(tmp_path: Path):
    simulate(tmp_path / "r")
    f = tmp_path / "r" / "sensors.metro.avro"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    manifest["topics"]["sensors.metro"]["sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    rec = open_recording(tmp_path / "r")
    with pytest.raises(RecordingError, match=r"sensors\.metro\.avro.*(truncated|holds)"):
        rec.check()


def test_an_unknown_manifest_version_is_refused(tmp_path: Path):
    simulate(tmp_path / "r")
    p = tmp_path / "r" / "manifest.json"
    p.write_text(p.read_text().replace('"version": 1', '"version": 99'))
    with pytest.raises(RecordingError, match=r"manifest\.json: manifest version 99 is unknown"):
        open_recording(tmp_path / "r")


def test_a_message_whose_schema_the_file_lacks_is_refused(tmp_path: Path):
    w = RecordingWriter(
        tmp_path / "r", {"sensors.metro": 1}, kinds={"sensors.metro": "metro"}, source="test"
    )
    w.write(Message("sensors.metro", 0, 0, 1, b"c1", b"\xc3\x01" + b"\x42" * 8 + b"body"))
    w.close()
    rec = open_recording(tmp_path / "r")
    with pytest.raises(RecordingError, match=r"sensors\.metro\.avro.*missing schema"):
        rec.check()


def test_no_manifest_is_a_clear_error(tmp_path: Path):
    with pytest.raises(RecordingError, match="no manifest"):
        open_recording(tmp_path)


def test_replay_of_a_corrupt_recording_sends_nothing(tmp_path: Path):
    simulate(tmp_path / "r")
    f = tmp_path / "r" / "sensors.camera.avro"
    f.write_bytes(f.read_bytes() + b"x")
    res = subprocess.run(
        [sys.executable, "-m", "moisson", "replay", str(tmp_path / "r"), "--kafka", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert "sensors.camera.avro" in res.stderr and "nothing was sent" in res.stderr
    assert "Traceback" not in res.stderr


def test_replay_plan_filters_and_maps(tmp_path: Path):
    simulate(tmp_path / "r")
    rec = open_recording(tmp_path / "r")
    s = Settings().replace(topics={"prefix": "t."})
    everything = plan_replay(rec, s)
    assert len(everything.items) == rec.manifest["count"]
    assert {dest for _, dest in everything.items} == {f"t.sensors.{k}" for k in SENSOR_KINDS}
    one = plan_replay(rec, s, citizens=["c0000001"], sensors=["metro"])
    assert one.items and all(m.key == b"c0000001" and d == "t.sensors.metro" for m, d in one.items)
    assert one.skipped == rec.manifest["count"] - len(one.items)
    mapped = plan_replay(rec, s, topic_map={"sensors.book": "elsewhere"})
    assert {d for m, d in mapped.items if m.topic == "sensors.book"} == {"t.elsewhere"}
    first = everything.items[0][0].timestamp
    window = plan_replay(rec, s, from_ms=first + 3_600_000, to_ms=first + 7_200_000)
    assert all(first + 3_600_000 <= m.timestamp <= first + 7_200_000 for m, _ in window.items)
    with pytest.raises(ValueError, match="lacks"):
        plan_replay(rec, s, topic_map={"nope": "x"})


def test_schedule_divides_gaps_by_speed_and_loops(tmp_path: Path):
    simulate(tmp_path / "r")
    rec = open_recording(tmp_path / "r")
    plan = plan_replay(rec, Settings())
    at10 = list(schedule(plan, 10.0, 1, False))
    assert [a for a, *_ in at10] == sorted(a for a, *_ in at10)
    assert at10[-1][0] == pytest.approx(plan.span_ms / 1000 / 10)
    assert [ts for *_, ts in at10] == [m.timestamp for m, _ in plan.items]
    fastest = list(schedule(plan, 0.0, 2, False))
    assert len(fastest) == 2 * len(plan.items) and all(a == 0 for a, *_ in fastest)
    shifted = list(schedule(plan, 0.0, 1, True, now_ms=lambda: 10**13))
    assert shifted[0][3] == 10**13
    assert shifted[-1][3] - shifted[0][3] == plan.span_ms
