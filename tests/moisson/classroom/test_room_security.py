"""The room on a real network address: who may do what, over HTTP, against a real
``moisson classroom`` (embedded broker and PostgreSQL)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.moisson.classroom.conftest import Session, request

pytestmark = pytest.mark.integration


def join(s: Session, nickname: str) -> tuple[dict, str]:
    status, me, cookie = request(f"{s.room}/api/room/join", {"code": s.code, "nickname": nickname})
    assert status == 200, me
    assert cookie
    return me, cookie


def test_a_foreign_host_is_refused(classroom: Session):
    for host in ("evil.example", "evil.example:80", f"{classroom.address}.evil.example"):
        status, body, _ = request(f"{classroom.room}/join", headers={"Host": host})
        assert status in (400, 421), (host, status, body)
    assert request(f"{classroom.room}/join")[0] == 200


def test_phones_reach_only_the_phones_pages(classroom: Session):
    """From the room's address: the projector, the dashboard, its API and the
    instructor's buttons are refused; on loopback they answer."""
    for path in ("/projector", "/", "/api/overview", "/api/room/projector", "/whatif"):
        assert request(f"{classroom.room}{path}")[0] == 403, path
        assert request(f"{classroom.local}{path}")[0] == 200, path
    for path in ("/api/room/next-day", "/api/room/end", "/api/room/erase"):
        assert request(f"{classroom.room}{path}", {})[0] == 403, path
    assert request(f"{classroom.room}/phone")[0] == 200


def test_a_join_without_the_code_is_refused(classroom: Session):
    for code in ("", "WRONG9", classroom.code[:-1]):
        status, body, cookie = request(
            f"{classroom.room}/api/room/join", {"code": code, "nickname": "Intruder"}
        )
        assert status in (403, 429), body
        assert cookie is None
    time.sleep(1.1)  # past the room-wide limit on wrong codes


def test_a_phone_acts_only_as_its_own_citizen(classroom: Session):
    me, cookie = join(classroom, "Ada")
    other, other_cookie = join(classroom, "Bo")
    tap = {"what": "pay", "target": "CHARITY"}
    status, body, _ = request(f"{classroom.room}/api/room/tap", {**tap, "as": other["id"]}, cookie)
    assert status == 403, body
    forged = cookie.rsplit(".", 1)[0] + "." + "0" * 64
    assert request(f"{classroom.room}/api/room/me", cookie=forged)[0] == 403
    swapped = other["id"] + cookie[len(me["id"]) :]  # Bo's id with Ada's signature
    assert request(f"{classroom.room}/api/room/me", cookie=swapped)[0] == 403
    assert request(f"{classroom.room}/api/room/tap", {**tap, "as": me["id"]}, cookie)[0] == 200
    # Bo erases himself: his pass, replayed, is refused; his rows are gone.
    status, erased, _ = request(f"{classroom.room}/api/room/erase-me", {}, other_cookie)
    assert status == 200, erased
    assert erased["rows_left"] and not any(erased["rows_left"].values())
    assert request(f"{classroom.room}/api/room/me", cookie=other_cookie)[0] == 403
    engine = create_engine(classroom.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT count(*) FROM {classroom.schema}.citizens WHERE citizen_id = :c"),
            {"c": other["id"]},
        ).scalar_one()
    engine.dispose()
    assert rows == 0


def test_the_third_tap_within_a_second_gets_429(classroom: Session):
    me, cookie = join(classroom, "Cy")
    tap = {"as": me["id"], "what": "help", "target": ""}
    statuses = [request(f"{classroom.room}/api/room/tap", tap, cookie)[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize(
    "nickname",
    ["<img src=x onerror=alert(1)>", "Mei\u202egnaw", "x" * 10_000, "esc\x1b[31mred", "a\x00b"],
)
def test_hostile_nicknames_are_refused(classroom: Session, nickname: str):
    status, body, cookie = request(
        f"{classroom.room}/api/room/join", {"code": classroom.code, "nickname": nickname}
    )
    assert status == 400, body
    assert cookie is None and "fix" in body


def test_what_is_collected_is_on_the_join_page(classroom: Session):
    _, page, _ = request(f"{classroom.room}/join?code={classroom.code}")
    assert "What is collected" in page and "Nothing about your phone or your network" in page


def test_a_phone_holds_at_most_three_live_streams(classroom: Session):
    import http.client

    _, cookie = join(classroom, "Di")
    opened, statuses = [], []
    try:
        for _ in range(4):
            conn = http.client.HTTPConnection(classroom.address, classroom.port, timeout=10)
            conn.request("GET", "/api/room/stream", headers={"Cookie": f"moisson_room={cookie}"})
            opened.append(conn)
            statuses.append(conn.getresponse().status)  # the headers: the stream is open
    finally:
        for c in opened:
            c.close()
    assert statuses == [200, 200, 200, 429]
