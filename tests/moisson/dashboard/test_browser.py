"""The classroom demo in a real browser: Debian's Chromium driven by Playwright.

`moisson demo` runs on the embedded stack (Tansu and embedded PostgreSQL); the test
watches the overview fill up, follows Lulu to her blacklisting and the gate that
refuses her, checks that an HTML name shows as text, then stops the demo with SIGINT
and checks that nothing it started is left running.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from kafka import KafkaProducer
from playwright.sync_api import sync_playwright

from moisson.stack.base import free_port
from processors.core.fold import fold_all
from schemas.codec import BOOK, encode
from sinks.postgres.writer import PostgresSink
from tests.factories import ev
from tests.poison import samples

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = "<script>alert(1)</script>"
HOSTILE_TITLE = '<img src=x onerror="alert(2)"> \u202eשלום 📚 三体\u200f'


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def wait(what: str, check, timeout: float = 240.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture
def start_demo(tmp_path: Path):
    """Starts ``moisson demo`` on the embedded stack with extra arguments; kills it after."""
    started: list[tuple[subprocess.Popen, object]] = []

    def start(*extra: str, citizens: int = 120, speed: str = "20000"):
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
        }
        env["COLUMNS"] = "200"
        env.pop("XDG_RUNTIME_DIR", None)  # as in containers and CI: platformdirs would warn
        log = tmp_path / f"demo-{len(started)}.log"
        out = open(log, "w")  # noqa: SIM115
        args = ["--citizens", str(citizens), "--speed", speed, "--port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "moisson", "demo", *args, "--broker", "embedded", *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        started.append((proc, out))
        return proc, port, log

    yield start
    for proc, out in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        out.close()  # type: ignore[attr-defined]


@pytest.fixture
def demo(start_demo):
    return start_demo()


def browser_page(p, width: int = 1400, height: int = 1000):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    return browser, browser.new_page(viewport={"width": width, "height": height})


def lulu_name(page, where: str) -> bool:
    return "Lulu" in (page.text_content(f"{where} table") or "")


def test_the_dashboard_tells_lulus_story(demo):
    proc, port, log = demo
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    wait("the dashboard", lambda: get(f"{url}/api/overview"), timeout=180)
    lulu = wait(
        "the demo to name Lulu",
        lambda: re.search(r"#/citizen/(c\d{7})", log.read_text()),
        timeout=60,
    ).group(1)
    text = log.read_text()
    assert "Warning" not in text, "the demo prints no warning a new user would not understand"
    db_url = re.search(r"at (postgresql://[^\s,]+)", text).group(1)
    schema = re.search(r"database schema (\S+),", text).group(1)

    # An injected name: the registry says a citizen is called <script>…</script>.
    hostile = fold_all([ev("camera", behaviour="GATHERING", citizen="c9999990")])["c9999990"]
    pg = PostgresSink(db_url, schema)

    class Person:
        id, name, home_district, work_district, persona = (
            "c9999990",
            HOSTILE,
            "Chaoyang",
            "Chaoyang",
            "activist",
        )

    pg.register([Person()])
    pg.write([hostile])
    pg.close()

    # Hostile event strings on the live feed, and a poison message for the dead-letter count.
    bootstrap = re.search(r" at ([^\s,]+:\d+)", text).group(1)
    prefix = re.search(r"topics (\S+)\*,", text).group(1)
    book = samples()["book"]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(
        f"{prefix}sensors.book",
        key=book.citizen_id.encode(),
        value=encode(BOOK, {**book.record, "title": HOSTILE_TITLE}),
    )
    producer.send(f"{prefix}sensors.metro", key=b"c0000001", value=b"<b>not avro</b>")
    producer.flush()
    producer.close()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser, page = browser_page(p)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{url}/")
        page.wait_for_function(
            "() => document.querySelector('#feed') && document.querySelector('#feed').children"
            ".length > 0 && !/^0 citizens/.test(document.querySelector('#tracked').textContent)",
            timeout=120_000,
        )
        first_event = time.monotonic() - started
        page.wait_for_function(
            "() => document.querySelector('#dead-letters')?.textContent"
            ".includes('not-single-object')",
            timeout=120_000,
        )
        page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

        # Lulu's week runs to its end: blacklisted, refused at the gate and at the ticket office.
        wait(
            "Lulu's blacklisting and denial",
            lambda: (lambda c: c["profile"]["blacklisted"] and c["profile"]["denied_count"] >= 2)(
                get(f"{url}/api/citizen/{lulu}")
            ),
            timeout=300,
        )
        wait("the week's end", lambda: "the dashboard stays up" in log.read_text(), timeout=240)
        page.goto(f"{url}/")
        page.wait_for_selector("#histogram")
        page.screenshot(path=str(ARTIFACTS / "dashboard-overview-end.png"), full_page=True)
        page.goto(f"{url}/#/citizen/{lulu}")
        page.wait_for_selector("#ledger")
        assert page.text_content("#citizen-name").startswith("Lulu")
        assert "BLACKLISTED" in page.text_content("#sanction")
        ledger = page.text_content("#ledger")
        assert "camera.gathering" in ledger and "camera.association" in ledger
        assert "metro.denied" in ledger and "payment.refused" in ledger
        assert "under 350: on the blacklist" in ledger
        assert "Refused at a gate" in page.text_content("#denials")
        assert re.search(r"\b1 gate", page.text_content("#denials"))
        lulu_ledger = get(f"{url}/api/citizen/{lulu}")["ledger"]

        # The chart: days, score ticks, the labelled line, and a dot per ledger entry.
        texts = "els => els.map(e => e.textContent)"
        days = page.eval_on_selector_all("#score-chart text.day", texts)
        assert days == [f"day {n}" for n in range(1, 8)], days
        ticks = [int(t) for t in page.eval_on_selector_all("#score-chart text.tick", texts)]
        assert ticks == sorted(ticks) and len(ticks) >= 3 and {300, 400} <= set(ticks), ticks
        assert "350: the blacklist line" in page.text_content("#score-chart")
        assert page.locator("#score-chart .mark").count() == len(lulu_ledger)
        # Reached with the keyboard: Tab from the search box lands on the dots, and a
        # focused dot names its rule.
        page.focus("#search")
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.classList.contains('mark')"):
                break
        first = lulu_ledger[0]
        assert page.evaluate("() => document.activeElement.id") == "mark-0"
        assert first["rule_id"] in page.text_content("#chart-tip")
        assert page.get_attribute('#ledger tr[data-entry="0"]', "class") == "hl"
        association = page.locator('#score-chart .mark[data-rule="camera.association"]').first
        association.dispatch_event("mouseenter")  # dots of one moment may overlap
        assert "camera.association" in page.text_content("#chart-tip")
        page.screenshot(path=str(ARTIFACTS / "dashboard-lulu.png"), full_page=True)

        # What if being seen with a blacklisted person cost nothing? Lulu would be free.
        page.goto(f"{url}/whatif")
        page.wait_for_selector('[id="off-camera.association"]')
        page.wait_for_function(
            "() => /blacklisted/.test(document.querySelector('#live')?.textContent ?? '')"
        )
        assert lulu_name(page, "#live")
        page.focus('[id="off-camera.association"]')
        page.keyboard.press("Space")
        assert page.input_value('[id="delta-camera.association"]') == "0"
        page.focus("#recompute")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('#freed')?.textContent.includes('Lulu')",
            timeout=60_000,
        )
        freed = page.text_content("#freed")
        assert lulu in freed and "camera.association" in freed
        assert not lulu_name(page, "#variant"), "freed: off the what-if blacklist"
        assert lulu_name(page, "#live"), "the live blacklist still holds her"
        page.screenshot(path=str(ARTIFACTS / "dashboard-whatif.png"), full_page=True)
        assert get(f"{url}/api/citizen/{lulu}")["profile"]["blacklisted"], "read-only"

        # The hostile book title is on its buyer's page, as text, byte for byte.
        page.goto(f"{url}/#/citizen/{book.citizen_id}")
        page.wait_for_function(
            "() => document.querySelector('#view')?.textContent.includes('onerror')",
            timeout=120_000,
        )
        assert HOSTILE_TITLE in page.text_content("#view")
        assert page.eval_on_selector("#view", "e => e.querySelectorAll('img, script').length") == 0

        # Search finds the hostile name, and it renders as text.
        page.fill("#search", "alert(1)")
        page.press("#search", "Enter")
        page.wait_for_function(
            "() => document.querySelector('#citizen-name')?.textContent.includes('alert')"
        )
        assert page.text_content("#citizen-name") == HOSTILE
        page.screenshot(path=str(ARTIFACTS / "dashboard-hostile-name.png"))
        assert page.eval_on_selector("#citizen-name", "e => e.children.length") == 0
        assert dialogs == []
        browser.close()
    print(
        f"\nfirst event on the dashboard {first_event:.1f}s after `moisson demo` started; "
        f"screenshots in {ARTIFACTS}"
    )

    # Ctrl-C: everything the demo started stops.
    demo_proc = psutil.Process(proc.pid)
    spawned = demo_proc.children(recursive=True)
    socket_dir = db_url.split("host=")[1]
    postgres = [
        q
        for q in psutil.process_iter(["cmdline"])
        if any(socket_dir.split("/pgdata")[0] in (a or "") for a in q.info["cmdline"] or [])
    ]
    assert spawned and postgres
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, log.read_text()[-2000:]
    _, alive = psutil.wait_procs(spawned + postgres, timeout=20)
    assert not [q for q in alive if q.status() != psutil.STATUS_ZOMBIE], alive
    assert "no process left behind" in log.read_text()


@pytest.mark.parametrize(
    "toggles",
    [("--pseudonymise",), ("--harvest", "metro", "--harvest", "camera")],
    ids=["pseudonymise", "harvest-metro-camera"],
)
def test_the_ethics_toggles_show_on_the_page(start_demo, toggles):
    proc, port, log = start_demo(*toggles, citizens=60, speed="max")
    url = f"http://127.0.0.1:{port}"
    wait("the demo's week", lambda: "the dashboard stays up" in log.read_text(), timeout=240)
    text = log.read_text()
    assert "ethics toggles:" in text, text[-2000:]
    refused = int(re.search(r"refused them (\d+) time", text).group(1))
    overview = get(f"{url}/api/overview")
    with sync_playwright() as p:
        browser, page = browser_page(p)
        page.goto(f"{url}/")
        page.wait_for_selector("#rates")
        if toggles == ("--pseudonymise",):
            # The sanctions name keyed hashes: no gate or ticket office can refuse anyone.
            assert refused == 0 and overview["refused"] == {"metro": 0, "payment": 0}
            banner = page.text_content("#ethics-pseudonymised")
            assert "keyed hashes" in banner and "0 refusal(s)" in banner
            assert "Refused at a gate 0 time(s), at a ticket office 0" in page.text_content(
                "#refused-count"
            )
            assert page.locator("#ethics-harvest").count() == 0
        else:
            # Only metro gates and cameras are read; what the others saw is left unread.
            assert page.locator("#ethics-pseudonymised").count() == 0
            banner = page.text_content("#ethics-harvest")
            assert "2 of 4 sensor networks" in banner
            unread = overview["totals"]["payment"] + overview["totals"]["book"]
            assert unread > 0 and f"{unread:,} event(s)" in banner
            share = round(100 * unread / sum(overview["totals"].values()))
            assert f"({share}%)" in banner
            for kind in ("payment", "book"):
                assert "not harvested" in page.text_content(f"#kind-{kind}")
            for kind in ("metro", "camera"):
                assert "not harvested" not in page.text_content(f"#kind-{kind}")
            lulu = re.search(r"#/citizen/(c\d{7})", text).group(1)
            page.goto(f"{url}/#/citizen/{lulu}")
            page.wait_for_selector("#ledger")
            rules = {e["rule_id"] for e in get(f"{url}/api/citizen/{lulu}")["ledger"]}
            assert rules and not any(r.startswith(("payment.", "book.")) for r in rules)
            assert "Purchases: —" in page.text_content("#view")
        name = "pseudonymised" if toggles == ("--pseudonymise",) else "minimised"
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
        browser.close()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, log.read_text()[-2000:]
