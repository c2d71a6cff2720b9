"""Who is blacklisted, as the ``sanctions`` topic tells it: the rule every reader applies.

Pure (no Kafka): the sensors' listener (``producers.publisher.KafkaSanctions``) and
``moisson verify`` feed it the sanctions they read, in the order read.

A sanction carries ``double_version``, the version of the double it states (the number
of distinct events applied). The processor may send a sanction again after a crash,
so an old "blacklisted" can arrive after a newer "lifted": a citizen's sanction is
applied only if its version is at least the one held. An equal version is the same
state published again (the processor's sanction for a version is deterministic), so
applying it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Sanction = Mapping[str, Any]


class SanctionBook:
    """Per citizen, the sanction in force: the one with the highest ``double_version``
    read so far (the latest read among equals)."""

    def __init__(self) -> None:
        #: citizen -> the sanction applied last (never a stale one).
        self.held: dict[str, Sanction] = {}
        #: the citizens whose sanction in force is active.
        self.blacklisted: set[str] = set()
        #: sanctions ignored because an applied one had a higher ``double_version``.
        self.stale = 0

    def apply(self, sanction: Sanction) -> bool:
        """Apply ``sanction`` unless it is older than the one held for its citizen;
        return whether it was applied (an equal version is applied: a no-op)."""
        cid = sanction["citizen_id"]
        held = self.held.get(cid)
        if held is not None and sanction["double_version"] < held["double_version"]:
            self.stale += 1
            return False
        self.held[cid] = sanction
        if sanction["active"]:
            self.blacklisted.add(cid)
        else:
            self.blacklisted.discard(cid)
        return True

    def held_version(self, citizen_id: str) -> int | None:
        """The ``double_version`` of the sanction in force, or None when none was read."""
        held = self.held.get(citizen_id)
        return None if held is None else int(held["double_version"])

    def is_blacklisted(self, citizen_id: str) -> bool:
        return citizen_id in self.blacklisted
