"""`moisson citizen` and `moisson dlq` print what sensors chose as text: a title such as
`[/]` neither crashes nor restyles them, and no escape sequence reaches the terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka import KafkaProducer

from moisson.settings import Settings, settings_env
from processors.core.fold import fold_all
from producers.publisher import ensure_topics
from schemas import dead_letters
from sinks.postgres.writer import PostgresSink
from tests.factories import ev

pytestmark = pytest.mark.integration

EVIL = "[/][bold]\x1b[2J\x1b]0;pwned\x07\x9b31m"
# What the terminal must show instead, and what it must never receive.
LITERAL = ["[/][bold]", "\\x1b[2J", "\\x1b]0;pwned\\x07", "\\x9b31m"]
RAW = ["\x1b", "\x07", "\x9b"]


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings), "COLUMNS": "400", "TERM": "xterm"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "moisson", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_citizen_prints_hostile_ids_titles_and_stations_literally(settings: Settings):
    citizen = f"c1{EVIL}"
    events = [
        ev("metro", citizen=citizen, station=f"Guomao{EVIL}"),
        ev("book", citizen=citizen, hours=1, title=f"Fahrenheit{EVIL}", category="BANNED"),
        ev("camera", citizen=citizen, hours=2, companions=[f"c3{EVIL}"]),
    ]
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    pg.write([fold_all(events)[citizen]])
    pg.close()

    res = run(settings, "citizen", citizen)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    for raw in RAW:
        assert raw not in res.stdout + res.stderr
    for literal in LITERAL:  # the id, the station, the title and the companion
        assert res.stdout.count(literal) >= 4, res.stdout

    missing = run(settings, "citizen", f"c2{EVIL}")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no citizen")
    for raw in RAW:
        assert raw not in missing.stderr


def test_dlq_prints_hostile_reasons_keys_and_details_literally(settings: Settings):
    ensure_topics(settings)
    producer = KafkaProducer(**settings.kafka.client_kwargs())
    for n in range(3):
        headers = dead_letters.headers(
            f"reason{EVIL}", f"title {EVIL} refused", settings.topics.sensor("book"), 0, n
        )
        producer.send(settings.topics.dlq, key=f"c{n}{EVIL}".encode(), value=b"x", headers=headers)
    producer.flush()
    producer.close()

    res = run(settings, "dlq")
    assert res.returncode == 0, res.stderr
    assert "3 dead letter(s)" in res.stdout
    for raw in RAW:
        assert raw not in res.stdout + res.stderr
    for literal in ("[/][bold]", "\\x1b[2J", "\\x9b31m"):  # reason, key, detail (folded)
        assert res.stdout.count(literal) >= 3, res.stdout
