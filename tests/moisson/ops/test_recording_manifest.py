"""A recording's manifest and files are checked before anything trusts them: field by
field, within caps, files only inside the recording, hashed as they stream."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from moisson.ops.recording import Message, RecordingError, RecordingWriter, open_recording
from moisson.ops.recording_file import MAX_INFLATED_BYTES
from moisson.ops.recording_manifest import MAX_MANIFEST_BYTES, MAX_MESSAGES, MAX_PARTITIONS
from tests.moisson.ops.hostile_recordings import FILE, TOPIC, edit_manifest, simulate


def with_topic(**change: Any):
    return lambda m: m["topics"][TOPIC].update(change)


@pytest.mark.parametrize(
    "change,why",
    [
        (with_topic(partitions=MAX_PARTITIONS + 1), "partitions: Input should be less than"),
        (with_topic(partitions="4"), "partitions: Input should be a valid integer"),
        (with_topic(partitions=0), "partitions: Input should be greater than or equal to 1"),
        (with_topic(kind="sanctions"), "kind 'sanctions' is not a sensor kind"),
        (with_topic(sha256="00"), "sha256: String should match pattern"),
        (with_topic(count=MAX_MESSAGES + 1), "count: Input should be less than"),
        (with_topic(file=None), "file: Input should be a valid string"),
        (lambda m: m["topics"].update({"a/b": m["topics"][TOPIC]}), r"topics\.a/b\.\[key\]"),
        (lambda m: m.update(topics=[]), "topics: Input should be a valid dictionary"),
        (lambda m: m.pop("source"), "source: Field required"),
    ],
)
def test_a_manifest_field_out_of_bounds_is_refused_by_name(tmp_path: Path, change, why):
    simulate(tmp_path / "r")
    edit_manifest(tmp_path / "r", change)
    with pytest.raises(RecordingError, match=why) as refused:
        open_recording(tmp_path / "r")
    assert "nothing was sent" in refused.value.fix


def test_the_partition_cap_is_inclusive(tmp_path: Path):
    simulate(tmp_path / "r")
    edit_manifest(tmp_path / "r", with_topic(partitions=MAX_PARTITIONS))
    open_recording(tmp_path / "r").check()


def test_more_topics_than_the_cap_are_refused(tmp_path: Path):
    simulate(tmp_path / "r")

    def add_64(m: dict[str, Any]) -> None:
        m["topics"].update({f"t{i}": m["topics"][TOPIC] for i in range(64)})

    edit_manifest(tmp_path / "r", add_64)
    with pytest.raises(RecordingError, match="topics: Dictionary should have at most 64 items"):
        open_recording(tmp_path / "r")


def test_a_manifest_past_its_cap_is_refused_unparsed(tmp_path: Path):
    simulate(tmp_path / "r")
    edit_manifest(tmp_path / "r", lambda m: m.update(padding="x" * MAX_MANIFEST_BYTES))
    with pytest.raises(RecordingError, match=r"manifest\.json: .* more than 1,048,576"):
        open_recording(tmp_path / "r")


def test_a_symlink_inside_the_recording_is_followed(tmp_path: Path):
    """Containment is checked on the resolved path: a link that stays inside is fine."""
    simulate(tmp_path / "r")
    (tmp_path / "r" / FILE).rename(tmp_path / "r" / "real.avro")
    (tmp_path / "r" / FILE).symlink_to("real.avro")
    rec = open_recording(tmp_path / "r")
    rec.check()


def test_a_missing_file_is_named(tmp_path: Path):
    simulate(tmp_path / "r")
    (tmp_path / "r" / FILE).unlink()
    with pytest.raises(RecordingError, match=r"sensors\.metro\.avro: missing"):
        open_recording(tmp_path / "r")


def test_files_are_hashed_as_they_stream(tmp_path: Path):
    """A 64 MiB file is hashed with under half a MiB of Python memory."""
    simulate(tmp_path / "r")
    big = tmp_path / "r" / FILE
    with open(big, "wb") as fo:
        for i in range(64):
            fo.write(bytes([i]) * (1 << 20))
    digest = hashlib.sha256()
    with open(big, "rb") as fo:
        while chunk := fo.read(1 << 20):
            digest.update(chunk)
    edit_manifest(tmp_path / "r", with_topic(sha256=digest.hexdigest()))
    tracemalloc.start()
    try:
        open_recording(tmp_path / "r")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 19


def write(directory: Path, *messages: Message, count: int | None = None) -> None:
    w = RecordingWriter(directory, {TOPIC: 4}, kinds={TOPIC: "metro"}, source="test")
    for m in messages:
        w.write(m)
    w.close()
    if count is not None:
        edit_manifest(directory, with_topic(count=count))


@pytest.mark.parametrize(
    "message,why",
    [
        (Message("sensors.book", 0, 0, 1, b"k", b"v"), "is of topic 'sensors.book'"),
        (Message(TOPIC, 4, 0, 1, b"k", b"v"), "partition outside the 4 recorded"),
        (Message(TOPIC, -1, 0, 1, b"k", b"v"), "partition outside the 4 recorded"),
        (Message(TOPIC, 0, -5, 1, b"k", b"v"), "offset or timestamp 1 out of range"),
        (Message(TOPIC, 0, 0, -1, b"k", b"v"), "offset or timestamp -1 out of range"),
    ],
)
def test_a_message_that_does_not_belong_is_refused(tmp_path: Path, message: Message, why: str):
    w = RecordingWriter(tmp_path / "r", {TOPIC: 4, "sensors.book": 4}, source="test")
    w._writers[TOPIC].write(message.as_record())  # as a forger's writer would
    w.stats[TOPIC].add(message)
    w.close()
    with pytest.raises(RecordingError, match=why):
        open_recording(tmp_path / "r").check()


def test_reading_stops_at_the_count_the_manifest_gives(tmp_path: Path):
    write(tmp_path / "r", *[Message(TOPIC, 0, i, i, b"k", b"v") for i in range(5)], count=3)
    rec = open_recording(tmp_path / "r")
    got = []
    with pytest.raises(RecordingError, match="holds more than the 3 messages"):
        got.extend(rec.messages(TOPIC))
    assert len(got) == 3
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["topics"][TOPIC]["count"] == 3


def test_more_messages_in_all_than_the_cap_are_refused(tmp_path: Path):
    simulate(tmp_path / "r")

    def crowd(m: dict[str, Any]) -> None:
        for t in m["topics"].values():
            t["count"] = MAX_MESSAGES // 2

    edit_manifest(tmp_path / "r", crowd)
    with pytest.raises(RecordingError, match="more than 2,000,000 messages in all"):
        open_recording(tmp_path / "r")


def test_a_file_larger_than_the_inflated_cap_is_refused_unread(tmp_path: Path):
    """Its size alone refuses it: a sparse file of 1 GiB is not hashed first."""
    simulate(tmp_path / "r")
    with open(tmp_path / "r" / FILE, "r+b") as fo:
        fo.truncate(MAX_INFLATED_BYTES + 1)
    with pytest.raises(RecordingError, match="1,073,741,825 bytes, more than 1,073,741,824"):
        open_recording(tmp_path / "r")
