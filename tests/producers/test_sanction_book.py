"""The sensors' blacklist ignores a sanction older than the one they hold."""

from __future__ import annotations

import threading
from collections import namedtuple

import pytest

from moisson.settings import Settings
from producers.publisher import KafkaSanctions
from producers.sanction_book import SanctionBook
from schemas.codec import SANCTION, encode
from tests.factories import sanction


def test_a_newer_lift_after_a_blacklisting_lifts():
    book = SanctionBook()
    assert book.apply(sanction(active=True, version=5))
    assert book.is_blacklisted("c0000001")
    assert book.apply(sanction(active=False, version=9))
    assert not book.is_blacklisted("c0000001")
    assert book.held_version("c0000001") == 9
    assert book.stale == 0


def test_an_older_blacklisting_after_a_newer_lift_is_ignored():
    book = SanctionBook()
    book.apply(sanction(active=True, version=5))
    book.apply(sanction(active=False, version=9))
    assert not book.apply(sanction(active=True, version=5)), "re-sent after a crash"
    assert not book.is_blacklisted("c0000001")
    assert book.held_version("c0000001") == 9
    assert book.stale == 1
    # A later blacklisting (a newer version) still applies.
    assert book.apply(sanction(active=True, version=12))
    assert book.is_blacklisted("c0000001")


def test_an_older_lift_after_a_newer_blacklisting_is_ignored():
    book = SanctionBook()
    book.apply(sanction(active=True, version=20))
    assert not book.apply(sanction(active=False, version=3))
    assert book.is_blacklisted("c0000001")
    assert book.stale == 1


def test_the_same_version_again_is_a_no_op():
    book = SanctionBook()
    s = sanction(active=True, version=7)
    assert book.apply(s)
    before = (dict(book.held), set(book.blacklisted))
    assert book.apply(dict(s)), "a re-publication of the same state is applied, harmlessly"
    assert (dict(book.held), set(book.blacklisted)) == before
    assert book.stale == 0


def test_other_citizens_are_unaffected():
    book = SanctionBook()
    book.apply(sanction("c0000001", active=False, version=50))
    assert book.apply(sanction("c0000002", active=True, version=2)), "versions are per citizen"
    assert book.blacklisted == {"c0000002"}
    assert not book.apply(sanction("c0000001", active=True, version=2))
    assert book.blacklisted == {"c0000002"}
    assert book.held_version("c0000003") is None
    assert not book.is_blacklisted("c0000003")


Record = namedtuple("Record", "offset value")


class FakeConsumer:
    """Hands out ``batches`` on successive polls, then sets ``stop`` and returns nothing."""

    def __init__(self, batches: list[list[bytes]], stop: threading.Event, **_kwargs) -> None:
        self.batches, self.stop = list(batches), stop

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def assign(self, tps) -> None:
        pass

    def seek_to_beginning(self) -> None:
        pass

    def poll(self, timeout_ms: int = 0) -> dict:
        if not self.batches:
            self.stop.set()
            return {}
        return {0: [Record(i, v) for i, v in enumerate(self.batches.pop(0))]}

    def close(self, timeout_ms: int | None = None) -> None:
        pass


def test_the_listener_feeds_the_book_and_counts_stale_sanctions(monkeypatch: pytest.MonkeyPatch):
    import kafka

    listener = KafkaSanctions(Settings.model_construct())
    batches = [
        [
            encode(SANCTION, sanction("c0000001", active=True, version=4)),
            encode(SANCTION, sanction("c0000002", active=True, version=6)),
        ],
        [
            b"not a sanction",
            encode(SANCTION, sanction("c0000001", active=False, version=8)),
            # The processor re-sends c0000001's old blacklisting after a crash.
            encode(SANCTION, sanction("c0000001", active=True, version=4)),
            encode(SANCTION, sanction("c0000002", active=True, version=6)),
        ],
    ]
    monkeypatch.setattr(
        kafka, "KafkaConsumer", lambda **kw: FakeConsumer(batches, listener._stop, **kw)
    )
    listener._run()
    assert listener.received == 5, "the undecodable record is not counted"
    assert listener.stale == 1
    assert not listener.is_blacklisted("c0000001")
    assert listener.is_blacklisted("c0000002")
    assert listener.blacklisted == {"c0000002"}
