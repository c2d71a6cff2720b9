"""`moisson verify` checks the sanctions topic against the oracle's doubles."""

from __future__ import annotations

from collections import namedtuple

import pytest

from moisson.ops import verify as vf
from moisson.ops.verify import Diff, compare_sanctions
from moisson.settings import Settings
from schemas.codec import SANCTION, encode
from tests.factories import sanction


def double(cid: str, blacklisted: bool) -> dict:
    return {"citizen_id": cid, "blacklisted": blacklisted}


def test_blacklisted_citizens_need_an_active_sanction():
    expected = {"c1": double("c1", True), "c2": double("c2", True), "c3": double("c3", True)}
    last = {
        "c1": sanction("c1", active=True, version=5),
        "c2": sanction("c2", active=False, version=9),
    }
    assert compare_sanctions(expected, last) == [
        Diff("c2", "sanction", "blacklisted", "lifted (double_version 9)"),
        Diff("c3", "sanction", "blacklisted", "no sanction"),
    ]


def test_citizens_never_blacklisted_need_no_sanction_or_an_inactive_one():
    expected = {"c1": double("c1", False), "c2": double("c2", False), "c3": double("c3", False)}
    last = {
        "c2": sanction("c2", active=False, version=3),
        "c3": sanction("c3", active=True, version=4),
    }
    assert compare_sanctions(expected, last) == [
        Diff("c3", "sanction", "not blacklisted", "blacklisted (double_version 4)")
    ]


def test_a_sanction_for_a_citizen_the_oracle_does_not_know():
    last = {
        "ghost": sanction("ghost", active=True, version=1),
        "lifted": sanction("lifted", active=False, version=1),
    }
    assert [d.citizen for d in compare_sanctions({}, last)] == ["ghost"]


def test_everything_agrees():
    expected = {"c1": double("c1", True), "c2": double("c2", False)}
    assert compare_sanctions(expected, {"c1": sanction("c1", active=True, version=2)}) == []


Record = namedtuple("Record", "offset value")


class FakeConsumer:
    """A topic whose reported end offsets are behind its log (Tansu 0.6 reports the last
    batch's base offset plus one), and whose fetches report no high-water mark."""

    def __init__(self, parts: dict[int, list[bytes | None]], ends: dict[int, int]) -> None:
        self.parts, self.ends, self.pos = parts, ends, dict.fromkeys(parts, 0)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.parts)

    def assign(self, tps) -> None:
        self.tps = {tp.partition: tp for tp in tps}

    def seek_to_beginning(self) -> None:
        self.pos = dict.fromkeys(self.parts, 0)

    def end_offsets(self, tps) -> dict:
        return {tp: self.ends[tp.partition] for tp in tps}

    def position(self, tp) -> int:
        return self.pos[tp.partition]

    def highwater(self, tp) -> None:
        return None

    def poll(self, timeout_ms: int = 0) -> dict:
        out = {}
        for p, values in self.parts.items():
            at = self.pos[p]
            batch = values[at : at + 2]  # two records a poll, past the end offsets too
            if batch:
                out[self.tps[p]] = [Record(at + i, v) for i, v in enumerate(batch)]
                self.pos[p] = at + len(batch)
        return out

    def close(self) -> None:
        pass


def s(cid: str, active: bool, version: int) -> bytes:
    return encode(SANCTION, sanction(cid, active=active, version=version))


def test_last_sanctions_keeps_the_highest_version_past_a_lagging_end(
    monkeypatch: pytest.MonkeyPatch,
):
    import kafka

    parts: dict[int, list[bytes | None]] = {
        0: [
            s("c1", True, 4),
            s("c1", False, 8),
            s("c1", True, 4),  # stale, re-sent after a crash
            b"garbage",
            None,  # a tombstone
        ],
        1: [s("c2", True, 3), s("c2", True, 3), s("c2", False, 7)],  # the lift past the end
    }
    fake = FakeConsumer(parts, ends={0: 5, 1: 2})
    monkeypatch.setattr(kafka, "KafkaConsumer", lambda **kw: fake)
    last = vf.last_sanctions(Settings.model_construct(), idle_s=0.05)
    assert {cid: (x["active"], x["double_version"]) for cid, x in last.items()} == {
        "c1": (False, 8),
        "c2": (False, 7),
    }


def test_verify_reads_a_sanction_past_the_reported_end_and_still_fails_on_a_missing_one(
    monkeypatch: pytest.MonkeyPatch,
):
    """c2's sanction is in the last batch, past the end the broker reports; c3's is not
    on the topic at all: verify must see the first and report the second."""
    import kafka

    parts: dict[int, list[bytes | None]] = {
        0: [s("c1", True, 4), s("c0", True, 2), s("c2", True, 6)]
    }
    monkeypatch.setattr(kafka, "KafkaConsumer", lambda **kw: FakeConsumer(parts, ends={0: 1}))
    expected = {c: double(c, True) for c in ("c0", "c1", "c2", "c3")}
    last, diffs = vf.wait_sanctions(expected, Settings.model_construct(), 0, idle_s=0.05)
    assert set(last) == {"c0", "c1", "c2"}
    assert diffs == [Diff("c3", "sanction", "blacklisted", "no sanction")]


def test_last_sanctions_of_a_missing_topic_is_empty(monkeypatch: pytest.MonkeyPatch):
    import kafka

    monkeypatch.setattr(kafka, "KafkaConsumer", lambda **kw: FakeConsumer({}, {}))
    assert vf.last_sanctions(Settings.model_construct()) == {}


def test_wait_sanctions_reads_again_until_the_late_sanction_lands(
    monkeypatch: pytest.MonkeyPatch,
):
    reads = iter([{}, {}, {"c1": sanction("c1", active=True, version=3)}])
    monkeypatch.setattr(vf, "last_sanctions", lambda settings, **kw: next(reads))
    monkeypatch.setattr(vf.time, "sleep", lambda _s: None)
    seen: list[int] = []
    last, diffs = vf.wait_sanctions(
        {"c1": double("c1", True)}, Settings.model_construct(), 60, seen.append
    )
    assert diffs == [] and set(last) == {"c1"}
    assert seen == [1, 1, 0]


def test_wait_sanctions_reads_once_without_time_left(monkeypatch: pytest.MonkeyPatch):
    calls = []
    monkeypatch.setattr(vf, "last_sanctions", lambda settings, **kw: calls.append(1) or {})
    _, diffs = vf.wait_sanctions({"c1": double("c1", True)}, Settings.model_construct(), 0)
    assert len(diffs) == 1 and len(calls) == 1
