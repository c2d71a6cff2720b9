"""`moisson verify` reads the sanctions topic to its end on the embedded Tansu broker,
whose ListOffsets reports an end behind its log (docs/tansu-high-watermark.md)."""

from __future__ import annotations

import pytest

from moisson.ops.verify import Diff, compare_sanctions, last_sanctions
from moisson.settings import Settings
from producers.publisher import ensure_topics
from tests.factories import reported_end, sanction, send_batches

pytestmark = pytest.mark.integration


def test_tansu_reports_the_last_batchs_base_offset_plus_one(tansu_settings: Settings):
    """The quirk the docs describe, still there: if this fails, Tansu was fixed; say so
    in docs/tansu-high-watermark.md."""
    ensure_topics(tansu_settings)
    send_batches(tansu_settings, 0, [[sanction("c1", version=v) for v in (1, 2, 3)]])
    assert reported_end(tansu_settings, 0) == 1  # Apache Kafka: 3
    send_batches(tansu_settings, 0, [[sanction("c2", version=4)]])
    assert reported_end(tansu_settings, 0) == 4  # a batch of one: right
    send_batches(tansu_settings, 0, [[sanction("c3", version=v) for v in (5, 6)]])
    assert reported_end(tansu_settings, 0) == 5  # Apache Kafka: 6


def test_last_sanctions_reads_the_last_batch_and_misses_nothing(tansu_settings: Settings):
    ensure_topics(tansu_settings)
    # c1 blacklisted then lifted, the lift in the last batch of partition 0, past the
    # reported end; c2 blacklisted in partition 1's last batch, after c3.
    send_batches(
        tansu_settings,
        0,
        [
            [sanction("c1", active=True, version=3)],
            [sanction("c4", active=True, version=2), sanction("c1", active=False, version=9)],
        ],
    )
    send_batches(
        tansu_settings,
        1,
        [[sanction("c3", active=True, version=5), sanction("c2", active=True, version=7)]],
    )
    assert reported_end(tansu_settings, 0) < 3 and reported_end(tansu_settings, 1) < 2
    last = last_sanctions(tansu_settings, timeout=30)
    assert {c: (x["active"], x["double_version"]) for c, x in last.items()} == {
        "c1": (False, 9),
        "c2": (True, 7),
        "c3": (True, 5),
        "c4": (True, 2),
    }
    expected = {c: {"citizen_id": c, "blacklisted": c != "c1"} for c in ("c1", "c2", "c3", "c4")}
    assert compare_sanctions(expected, last) == []
    # A sanction really missing (c5 never sanctioned) is still reported.
    expected["c5"] = {"citizen_id": "c5", "blacklisted": True}
    assert compare_sanctions(expected, last) == [
        Diff("c5", "sanction", "blacklisted", "no sanction")
    ]
