"""The room's students as the harvester publishes them: each one's latest double and
ledger, read from the ``doubles`` and ``ledger`` topics as they arrive.

The phones and the projector show what this holds, so a tap's effect reaches them as
soon as the processor emits it, without waiting for the sink and a database query. It
reads without a consumer group and keeps only the room's students (the crowd's
records are skipped by their key, undecoded), each with at most ``ledger_max``
entries.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from moisson.dashboard.tail import follow
from moisson.settings import Settings
from schemas.codec import CodecError, IdResolver, decode

log = logging.getLogger(__name__)

#: How long the broker may hold a fetch when it has nothing new: what a tap's effect
#: may wait here before the phone sees it (kafka-python's default is 500 ms).
FETCH_WAIT_MS = 50
#: Ledger entries kept per student (the phone shows the newest; the debrief reads PostgreSQL).
LEDGER_MAX = 60


class RoomTail:
    """Per student: ``doubles[id]`` (score, tier, version…) and ``ledger[id]``."""

    def __init__(
        self,
        settings: Settings,
        wanted: Callable[[str], bool],
        changed: Callable[[str], None],
        resolver: IdResolver | None = None,
    ) -> None:
        self.settings, self.wanted, self.changed, self.resolver = (
            settings,
            wanted,
            changed,
            resolver,
        )
        self.doubles: dict[str, dict[str, Any]] = {}
        self.ledger: dict[str, deque[dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="room-tail", daemon=True)

    def start(self) -> RoomTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def forget(self, cid: str) -> None:
        """Drop what is held of ``cid`` (a student who erased themselves)."""
        self.doubles.pop(cid, None)
        self.ledger.pop(cid, None)

    def _run(self) -> None:
        follow(
            self.settings,
            [self.settings.topics.doubles, self.settings.topics.ledger],
            lambda r: self._take(r.topic, r.key, r.value),
            self._stop,
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )

    def _take(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        cid = key.decode(errors="replace") if key else ""
        if value is None or not self.wanted(cid):
            return
        try:
            _, record = decode(value, resolver=self.resolver)
        except CodecError as exc:
            log.warning("the room skips an undecodable record on %s: %s", topic, exc)
            return
        if topic == self.settings.topics.doubles:
            held = self.doubles.get(cid)
            if held is not None and held["version"] >= record["version"]:
                return  # republished after a restart: not newer
            self.doubles[cid] = {
                k: record[k]
                for k in ("version", "base_score", "score", "tier", "blacklisted", "denied_count")
            }
        else:
            entries = self.ledger.setdefault(cid, deque(maxlen=LEDGER_MAX))
            mark = (record["event_id"], record["rule_id"])
            if any((e["event_id"], e["rule_id"]) == mark for e in entries):
                return  # republished after a restart
            entries.append(record)
        self.changed(cid)
