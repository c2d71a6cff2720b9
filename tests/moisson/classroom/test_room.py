"""The room's rules of entry, its clock and its choices: pure, no services."""

from __future__ import annotations

import pytest

from moisson.classroom.choices import Choice, ChoiceError, observe
from moisson.classroom.clock import SessionClock
from moisson.classroom.room import NICKNAME_MAX, Refused, Room
from moisson.classroom.views import histogram, why_below
from processors.core.scoring import load_rules
from producers.city import DAY_MS, EPOCH_MS
from producers.sanction_book import SanctionBook


class Ticks:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def refused(status: int, call, *args):
    with pytest.raises(Refused) as exc:
        call(*args)
    assert exc.value.status == status, exc.value
    assert exc.value.fix
    return exc.value


def test_a_join_needs_the_code_and_gives_a_pseudonymous_citizen():
    room = Room(code="ABC234")
    refused(403, room.join, "WRONG1", "Mei", 0)
    refused(403, room.join, "", "Mei", 0)
    mei = room.join("abc234", "Mei", 0)
    assert mei.id.startswith("s") and "Mei" not in mei.id
    assert mei.nickname == "Mei"
    refused(409, room.join, "ABC234", "mei", 0)  # taken, whatever the case
    assert room.join("ABC234", "", 0).nickname  # a generated one


def test_wrong_codes_are_limited_room_wide():
    ticks = Ticks()
    room = Room(code="ABC234", now=ticks)
    for _ in range(5):
        refused(403, room.join, "NOPE", "x", 0)
    refused(429, room.join, "NOPE", "x", 0)
    ticks.t += 1.5
    refused(403, room.join, "NOPE", "x", 0)


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "Mei\u202eiem",  # a right-to-left override
        "zero\u200bwidth",
        "x" * 10_000,
        "bell\x07",
        "nul\x00",
        "a" * (NICKNAME_MAX + 1),
    ],
)
def test_hostile_nicknames_are_refused(name):
    room = Room(code="ABC234")
    refused(400, room.join, "ABC234", name, 0)
    assert not room.students


def test_nicknames_in_any_script_are_welcome():
    room = Room(code="ABC234")
    for name in ("露露", "Zoë O'Neil", "Ана-Мария", "  spaced   out  "):
        assert room.join("ABC234", name, 0).nickname == " ".join(name.split())


def test_the_room_has_a_size():
    room = Room(max_students=2, code="ABC234")
    room.join("ABC234", "a", 0)
    room.join("ABC234", "b", 0)
    refused(503, room.join, "ABC234", "c", 0)


def test_a_capability_names_one_citizen_and_cannot_be_forged_or_replayed():
    room = Room(code="ABC234")
    mei, lu = room.join("ABC234", "Mei", 0), room.join("ABC234", "Lu", 0)
    cap = room.capability(mei)
    assert room.holder(cap) is mei
    assert room.holder(cap, acting_for=mei.id) is mei
    refused(403, room.holder, cap, lu.id)  # acting for another citizen
    cid, nonce, sig = cap.split(".")
    refused(403, room.holder, f"{lu.id}.{nonce}.{sig}")  # another id, same signature
    refused(403, room.holder, f"{cid}.{nonce}.{'0' * len(sig)}")
    refused(403, room.holder, None)
    refused(403, room.holder, "garbage")
    other = Room(code="ABC234")  # another session: another key
    refused(403, other.holder, cap)
    room.erase(mei)
    refused(403, room.holder, cap)  # replayed after the student erased themselves


def test_the_third_tap_within_a_second_is_refused():
    ticks = Ticks()
    room = Room(code="ABC234", taps_per_second=2, now=ticks)
    mei = room.join("ABC234", "Mei", 0)
    room.take_tap(mei)
    ticks.t += 0.4
    room.take_tap(mei)
    ticks.t += 0.4
    refused(429, room.take_tap, mei)
    ticks.t += 0.7  # the first tap is now more than a second old
    room.take_tap(mei)
    room.ended = True
    refused(410, room.take_tap, mei)


def test_the_clock_stamps_in_order_and_jumps_to_the_next_morning():
    ticks = Ticks()
    clock = SessionClock(60, now=ticks)
    assert clock.label() == "Day 1, 07:00"
    a, b = clock.stamp(), clock.stamp()
    assert b > a
    ticks.t += 60  # an hour of the city
    assert clock.label() == "Day 1, 08:00"
    assert clock.next_day() == 1
    assert clock.label() == "Day 2, 07:00"
    assert clock.now_ms() == EPOCH_MS + DAY_MS + 7 * 3_600_000


def test_a_blacklisted_students_metro_tap_is_refused_by_the_gate():
    room = Room(code="ABC234")
    mei = room.join("ABC234", "Mei", 0)
    book = SanctionBook()
    tap = observe(Choice("metro", "Haidian"), mei.citizen, EPOCH_MS, book)
    assert tap.kind == "metro" and tap.record["outcome"] == "ALLOWED"
    assert tap.citizen_id == mei.id
    book.apply({"citizen_id": mei.id, "active": True, "double_version": 3})
    refused_tap = observe(Choice("metro", "Haidian"), mei.citizen, EPOCH_MS + 1, book)
    assert refused_tap.record["outcome"] == "DENIED"
    walk = observe(Choice("walk", mei.id), room.join("ABC234", "Lu", 0).citizen, EPOCH_MS, book)
    assert walk.record["companions_blacklisted"] == [mei.id]  # the camera flags her


@pytest.mark.parametrize(
    "choice",
    [Choice("metro", "Atlantis"), Choice("pay", "GUNS"), Choice("book", "x"), Choice("fly")],
)
def test_only_the_menus_choices_are_observed(choice):
    mei = Room(code="ABC234").join("ABC234", "Mei", 0)
    with pytest.raises(ChoiceError):
        observe(choice, mei.citizen, EPOCH_MS, SanctionBook())


def test_histogram_and_why_below():
    bins = histogram([0, 349, 350, 1000], 0, 1001)
    assert {b["from"]: b["count"] for b in bins if b["count"]} == {0: 1, 300: 1, 350: 1, 1000: 1}
    rules = load_rules()
    why = why_below(
        [
            {"rule_id": "camera.gathering", "delta": -50},
            {"rule_id": "book.banned", "delta": -30},
            {"rule_id": "camera.gathering", "delta": -50},
            {"rule_id": "payment.charity", "delta": 10},
        ],
        rules,
    )
    assert why[0].startswith("Seen at a gathering") and why[0].endswith("(-100)")
    assert len(why) == 2
