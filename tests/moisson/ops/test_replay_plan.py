"""Where replay sends a recording's topics: a sensor topic to its kind's topic, anything
else only where --topic-map says, always under TOPICS_PREFIX; refused before sending."""

from __future__ import annotations

from pathlib import Path

import pytest

from moisson.ops.recording import Message, RecordingWriter, open_recording
from moisson.ops.replay import MAX_SEND_BYTES, Refused, destinations, plan_replay
from moisson.settings import Settings

METRO = "sensors.metro"


def recording(directory: Path, other: str | None = "sanctions", kind: str | None = None):
    topics = {METRO: 4} | ({other: 4} if other else {})
    kinds = {METRO: "metro"} | ({other: kind} if other and kind else {})
    w = RecordingWriter(directory, topics, kinds=kinds, source="record")
    w.write(Message(METRO, 0, 0, 1, b"c1", b"metro"))
    if other:
        w.write(Message(other, 1, 0, 2, b"c1", b"other"))
    w.close()
    return open_recording(directory)


def prefixed(prefix: str) -> Settings:
    return Settings().replace(topics={"prefix": prefix})


@pytest.mark.parametrize("other", ["sanctions", "doubles", "anything"])
def test_a_topic_that_is_not_a_sensor_is_refused(tmp_path: Path, other: str):
    rec = recording(tmp_path / "r", other)
    with pytest.raises(Refused, match=f"holds '{other}', which is not a sensor topic") as refused:
        plan_replay(rec, prefixed("p."))
    assert f"--topic-map {other}=NEW" in refused.value.fix


def test_a_mapped_topic_goes_under_the_prefix(tmp_path: Path):
    rec = recording(tmp_path / "r")
    plan = plan_replay(rec, prefixed("p."), topic_map={"sanctions": "old.sanctions"})
    assert [d for _, d in plan.items] == ["p.sensors.metro", "p.old.sanctions"]
    assert destinations(rec, prefixed(""), {"sanctions": "sanctions"}) == {
        METRO: "sensors.metro",
        "sanctions": "sanctions",  # an explicit choice, without a prefix to apply
    }


def test_a_sensor_filter_leaves_the_other_topic_out(tmp_path: Path):
    rec = recording(tmp_path / "r")
    plan = plan_replay(rec, prefixed("p."), sensors=["metro"])
    assert [d for _, d in plan.items] == ["p.sensors.metro"] and plan.skipped == 1


def test_a_topic_named_like_another_goes_where_its_kind_says(tmp_path: Path):
    """A topic called sanctions whose manifest says it carries metro events goes to the
    metro topic, under the prefix: the recorded name never chooses the destination."""
    rec = recording(tmp_path / "r", "sanctions", kind="metro")
    plan = plan_replay(rec, prefixed("p."))
    assert {d for _, d in plan.items} == {"p.sensors.metro"}


@pytest.mark.parametrize("new", ["a/b", "", "x" * 250, "sp ace"])
def test_a_mapped_name_kafka_would_refuse_is_refused(tmp_path: Path, new: str):
    rec = recording(tmp_path / "r")
    with pytest.raises(Refused, match="not a Kafka topic name"):
        plan_replay(rec, prefixed("p."), topic_map={"sanctions": new})


def test_a_map_of_a_topic_the_recording_lacks_is_refused(tmp_path: Path):
    rec = recording(tmp_path / "r")
    with pytest.raises(Refused, match="lacks"):
        plan_replay(rec, prefixed("p."), topic_map={"nope": "x", "sanctions": "s"})


def test_a_message_too_large_to_send_is_refused_before_sending(tmp_path: Path):
    w = RecordingWriter(tmp_path / "r", {METRO: 1}, kinds={METRO: "metro"}, source="record")
    w.write(Message(METRO, 0, 0, 1, b"c1", b"small"))
    w.write(Message(METRO, 0, 1, 2, b"c1", bytes(MAX_SEND_BYTES)))
    w.close()
    rec = open_recording(tmp_path / "r")
    with pytest.raises(Refused, match=r"message 0@1 of sensors\.metro is 1,000,002 bytes"):
        plan_replay(rec, prefixed("p."))
    assert len(plan_replay(rec, prefixed("p."), to_ms=1).items) == 1
