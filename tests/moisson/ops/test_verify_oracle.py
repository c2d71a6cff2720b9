"""The oracle of ``moisson verify``: what each destination partition receives from a
replay, and the lateness rule applied to it, as the processor applies it."""

from __future__ import annotations

import time
from pathlib import Path

from moisson.ops.recording import Message, RecordingWriter, open_recording, partition_for
from moisson.ops.verify import compare, expected_plan, received, settle
from processors.core.fold import explained_ledger, fold_all
from schemas.codec import SENSOR_SCHEMAS, encode
from tests.factories import ev

DAY = 24.0


def recording(tmp_path: Path, events, partitions: int = 2):
    """``events`` recorded in this order on sensors.camera, timestamps in that order."""
    w = RecordingWriter(
        tmp_path / "rec",
        {"sensors.camera": partitions},
        kinds={"sensors.camera": "camera"},
        source="test",
    )
    for i, e in enumerate(events):
        value = encode(SENSOR_SCHEMAS["camera"], e.record)
        key = e.citizen_id.encode()
        w.write(Message("sensors.camera", partition_for(key, partitions), i, 1000 + i, key, value))
    w.close()
    return open_recording(tmp_path / "rec")


def test_an_event_recorded_after_a_newer_one_by_more_than_the_lateness_is_too_late(tmp_path):
    fresh = ev("camera", hours=30 * DAY, behaviour="GATHERING")
    late = ev("camera", hours=20 * DAY, behaviour="GATHERING")
    on_time = ev("camera", hours=25 * DAY, behaviour="JAYWALKING")
    rec = recording(tmp_path, [fresh, late, on_time])
    plan = expected_plan(rec)
    assert plan.rejections["too-late"] == 1
    assert plan.doubles["c0000001"][0] == fold_all([fresh, on_time])["c0000001"]
    # Re-partitioned into another partition count, the key keeps them together: the same.
    again = expected_plan(rec, partitions=3)
    assert again.rejections["too-late"] == 1
    # A longer lateness lets it in.
    assert not expected_plan(rec, lateness_s=11 * 86400).rejections.get("too-late")


def test_each_destination_partition_has_its_own_order_and_offsets(tmp_path):
    events = [ev("camera", hours=i, citizen=f"c{i:07d}") for i in range(20)]
    rec = recording(tmp_path, events)
    kept = received(rec)
    assert {m.partition for m in kept} == {0, 1}
    moved = received(rec, partitions=5)
    assert {m.partition for m in moved} <= set(range(5)) and len({m.partition for m in moved}) > 2
    for msgs in (kept, moved):
        by_part: dict[int, list[int]] = {}
        for m in msgs:
            by_part.setdefault(m.partition, []).append(m.offset)
        assert all(offsets == list(range(len(offsets))) for offsets in by_part.values())


class _LaggingLedger:
    """A PostgreSQL reader whose ledger rows arrive ``lag`` reads after the profiles."""

    def __init__(self, doubles, lag: int, profile_error: bool = False):
        self.doubles, self.lag, self.reads = doubles, lag, 0
        self.profile_error = profile_error

    def profiles(self):
        self.reads += 1
        if self.profile_error:
            return {c: {**d, "metro_count": d["metro_count"] + 1} for c, d in self.doubles.items()}
        return self.doubles

    def ledger(self):
        if self.reads <= self.lag:
            return []
        return [
            {"citizen_id": c, **e} for c, d in self.doubles.items() for e in explained_ledger(d)
        ]

    def blacklist_rows(self):
        return []


def test_verify_waits_for_ledger_rows_in_flight_but_not_for_a_wrong_profile():
    doubles = fold_all([ev("camera", behaviour="GATHERING"), ev("metro", hours=1)])
    pg = _LaggingLedger(doubles, lag=2)
    assert compare(doubles, pg) != []  # the rows are not there yet
    assert settle(doubles, pg, None, time.monotonic() + 10) == []
    assert pg.reads == 3
    wrong = _LaggingLedger(doubles, lag=100, profile_error=True)
    diffs = settle(doubles, wrong, None, time.monotonic() + 10)
    assert wrong.reads == 1 and any(d.field == "metro_count" for d in diffs)
    behind = _LaggingLedger(doubles, lag=100)
    start = time.monotonic()
    assert settle(doubles, behind, None, start + 0.6) != []  # gives up at the deadline
    assert time.monotonic() - start < 5


def test_a_message_recorded_off_its_keys_partition_is_refused_as_the_worker_refuses_it(
    tmp_path,
):
    e = ev("camera", citizen="c0000042")
    key = e.citizen_id.encode()
    away = (partition_for(key, 4) + 1) % 4
    w = RecordingWriter(
        tmp_path / "rec", {"sensors.camera": 4}, kinds={"sensors.camera": "camera"}, source="t"
    )
    w.write(
        Message("sensors.camera", away, 0, 1000, key, encode(SENSOR_SCHEMAS["camera"], e.record))
    )
    w.close()
    rec = open_recording(tmp_path / "rec")
    assert expected_plan(rec).rejections == {"wrong-partition": 1}
    assert not expected_plan(rec, check_partition=False).rejections
    # Re-partitioned by key into another count, it lands on its key's partition.
    assert not expected_plan(rec, partitions=3).rejections
