"""Thirty phones and a projector in Debian's Chromium, on a real ``moisson classroom``.

Every phone joins by the link the projector shows and taps through two simulated days;
Lulu is driven under 350 and refused at the gate; Mei, who walked with her, loses the
association points; the projector's histogram and blacklist match PostgreSQL; a
recording of the session passes ``moisson verify``; "Erase the room" leaves no row
and no topic.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import create_engine, text

from moisson.classroom.views import histogram
from tests.moisson.classroom.conftest import Session, request, stop_classroom
from tests.moisson.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
PHONES = 30
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
#: Everyday taps the other phones take turns at.
EVERYDAY = [
    ("metro", "Chaoyang"),
    ("pay", "GROCERIES"),
    ("book", "NEUTRAL"),
    ("help", ""),
    ("pay", "GAMING"),
    ("pay", "CHARITY"),
    ("jaywalk", ""),
    ("pay", "BABY"),
    ("pay", "ALCOHOL"),
]
#: Lulu's first day: 600 −30 −90 −90 −20 −30 = 340, under the line.
LULU = [
    ("book", "BANNED"),
    ("gathering", ""),
    ("gathering", ""),
    ("pay", "FINES"),
    ("book", "BANNED"),
]


class Phone:
    def __init__(self, page: Page, nickname: str) -> None:
        self.page, self.nickname, self.sent = page, nickname, 0
        self.id = ""
        self.last = 0.0

    def tap(self, what: str, target: str = "") -> str:
        """One tap through the phone's buttons; the result line it shows."""
        wait = 0.55 - (time.monotonic() - self.last)  # two taps a second at most
        if wait > 0:
            time.sleep(wait)
        self.page.click(f'#menu button[data-what="{what}"]')
        if target:
            self.page.click(f'#targets button[data-target="{target}"]')
        self.sent += 1
        self.last = time.monotonic()
        self.page.wait_for_selector(f'#result[data-sent="{self.sent}"]', timeout=20_000)
        return self.page.text_content("#result") or ""


def pg_rows(session: Session, sql: str, **params) -> list:
    engine = create_engine(session.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql.format(schema=session.schema)), params))
    finally:
        engine.dispose()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_thirty_phones_two_days_one_gate_refusal_and_an_erased_room(classroom: Session, tmp_path):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        projector = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []
        projector.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        projector.goto(f"{classroom.local}/projector")
        projector.wait_for_function(
            f"() => document.querySelector('#code').textContent === '{classroom.code}'"
        )
        join_url = projector.text_content("#join-url") or ""
        assert join_url == f"{classroom.room}/join?code={classroom.code}"
        assert projector.evaluate("() => document.querySelector('#qr').naturalWidth") > 100

        phones: list[Phone] = []
        names = ["Lulu", "Mei", "露露 Zhang", "Zoë"] + [
            f"Student {i}" for i in range(5, PHONES + 1)
        ]
        for name in names:
            page = browser.new_context(**PHONE).new_page()
            page.goto(join_url)
            assert "What is collected" in (page.text_content("#join-view") or "")
            page.fill("#nickname", name)
            page.click("#join")
            page.wait_for_selector("#me-view:not(.hidden)")
            phone = Phone(page, name)
            phone.id = page.evaluate("() => me.id")
            phones.append(phone)
        lulu, mei = phones[0], phones[1]
        assert mei.page.text_content("#nick") == "Mei"
        assert phones[2].page.text_content("#nick") == "露露 Zhang"
        shot(mei.page, "room-phone-joined")
        projector.wait_for_function(
            f"() => document.querySelector('#count').textContent === '{PHONES}'"
        )

        # Day 1: Lulu's choices, and two everyday taps for everyone else.
        for what, target in LULU:
            lulu.tap(what, target)
        for turn in range(2):
            for i, phone in enumerate(phones[1:], start=1):
                phone.tap(*EVERYDAY[(i + turn) % len(EVERYDAY)])
        lulu.page.wait_for_function(
            "() => document.querySelector('#status').textContent.includes('BLACKLISTED')",
            timeout=30_000,
        )
        assert lulu.page.text_content("#score") == "340"
        shot(lulu.page, "room-phone-blacklisted")

        # Mei walks with Lulu: "your friends' scores are yours".
        mei.page.click('#menu button[data-what="walk"]')
        mei.page.click(f'#targets button[data-target="{lulu.id}"]')
        mei.sent += 1
        mei.page.wait_for_function(
            "() => document.querySelector('#ledger').textContent"
            ".includes('together with a blacklisted')",
            timeout=30_000,
        )

        # Day 2: the gate refuses Lulu.
        projector.click("#next-day")
        projector.wait_for_function(
            "() => document.querySelector('#clock').textContent.includes('Day 2')"
        )
        refused = lulu.tap("metro", "Haidian")
        assert "REFUSED by the gate" in refused, refused
        assert "refused" in (lulu.page.get_attribute("#result", "class") or "")
        shot(lulu.page, "room-phone-refused")
        for phone in phones[1:]:
            phone.tap(*EVERYDAY[phones.index(phone) % len(EVERYDAY)])
        projector.wait_for_function(
            "() => document.querySelector('#feed').textContent.includes('REFUSED by the gate')"
        )
        projector.wait_for_function(
            "() => document.querySelector('#below').textContent.includes('Lulu')"
        )

        # The pipeline has applied every tap: PostgreSQL, then the projector, agree.
        sent = {ph.id: ph.sent for ph in phones}
        deadline = time.monotonic() + 60
        while True:
            rows = pg_rows(
                classroom,
                "SELECT citizen_id, version, score, blacklisted FROM {schema}.citizen_profiles "
                "WHERE citizen_id LIKE 's%'",
            )
            if {r[0]: r[1] for r in rows} == sent:
                break
            assert time.monotonic() < deadline, f"PostgreSQL has {rows}, the phones sent {sent}"
            time.sleep(0.5)
        time.sleep(1.0)  # the projector's last push
        _, room, _ = request(f"{classroom.local}/api/room/projector")
        assert room["histogram"] == histogram([r[2] for r in rows], 0, 1001)
        assert (
            {st["id"] for st in room["students"] if st["blacklisted"]}
            == {r[0] for r in rows if r[3]}
            == {lulu.id}
        )
        assert {st["id"]: st["score"] for st in room["students"]} == {r[0]: r[2] for r in rows}
        association = pg_rows(
            classroom,
            "SELECT delta FROM {schema}.score_ledger WHERE citizen_id = :c "
            "AND rule_id = 'camera.association'",
            c=mei.id,
        )
        assert [a[0] for a in association] == [-15]
        projector.wait_for_timeout(1500)
        shot(projector, "room-projector")

        # The debrief: each phone turns to its file.
        projector.click("#end")
        lulu.page.wait_for_selector("#crossings tr", timeout=30_000)
        file_text = lulu.page.text_content("#file-view") or ""
        assert "Blacklisted on Day 1" in file_text and "book.banned" in file_text
        shot(lulu.page, "room-phone-debrief")

        # The What if runs on the room's own events: without book.banned, Lulu goes free.
        status, whatif, _ = request(f"{classroom.local}/api/whatif?set=book.banned=0")
        assert status == 200, whatif
        assert {(c["id"], c["name"]) for c in whatif["freed"]} >= {(lulu.id, "Lulu")}

        # A recording of the session's topics passes verify.
        env = classroom.env()
        recording = tmp_path / "recording"
        rec = subprocess.run(
            [
                sys.executable,
                "-m",
                "moisson",
                "record",
                "--out",
                str(recording),
                "--until-idle",
                "4",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert rec.returncode == 0, rec.stdout + rec.stderr
        ver = subprocess.run(
            [sys.executable, "-m", "moisson", "verify", str(recording), "--timeout", "120"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert ver.returncode == 0, ver.stdout + ver.stderr

        # The last student erases themselves from their phone (after the recording:
        # their raw taps stay in the topics until the room is erased, so verify would
        # then miss their rows, as it should).
        leaver = phones[-1]
        leaver.page.on("dialog", lambda d: d.accept())
        leaver.page.click("#erase-me")
        leaver.page.wait_for_selector("#erased p", timeout=30_000)
        erased_text = leaver.page.text_content("#erased") or ""
        assert "citizen_profiles: 0 row(s)" in erased_text and "citizens: 0 row(s)" in erased_text

        remaining = pg_rows(
            classroom,
            "SELECT count(*) FROM {schema}.citizen_profiles WHERE citizen_id = :c",
            c=leaver.id,
        )
        assert remaining[0][0] == 0

        # Erase the room: nothing is left, on the projector and in fact.
        projector.click("#erase")
        projector.wait_for_selector("#erased-view:not(.hidden)", timeout=90_000)
        assert "Nothing is left of the room." in (projector.text_content("#erased") or "")
        shot(projector, "room-projector-erased")
        assert dialogs, "the erase asked for confirmation"
        browser.close()

    schemas = pg_rows(
        classroom,
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s",
        s=classroom.schema,
    )
    assert schemas[0][0] == 0
    admin = KafkaAdminClient(bootstrap_servers=classroom.bootstrap)
    app_id = "moisson-" + classroom.prefix.rstrip(".")
    left = [t for t in admin.list_topics() if t.startswith((classroom.prefix, app_id))]
    admin.close()
    assert left == []
    assert request(f"{classroom.room}/api/room/me")[0] == 403
    log = stop_classroom(classroom)
    assert "room erased" in log and "left 0" in log, log
