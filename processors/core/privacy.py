"""Ethics toggles: what the harvester may know. Pure (stdlib only).

- Minimisation: only some sensor kinds are harvested; the rest are dropped unread.
- Pseudonymisation: citizen ids are replaced by a keyed hash before scoring, so the
  doubles, ledger and blacklist hold pseudonyms. Sanctions then name pseudonyms, which
  gates cannot match to a face: the punishment loop breaks. That is the lesson.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ID_FIELDS = ("citizen_id",)
LIST_FIELDS = ("companions", "companions_blacklisted")


@dataclass(frozen=True)
class Privacy:
    """What the harvester is allowed to keep."""

    kinds: frozenset[str] | None = None  # None: every kind
    key: bytes | None = None  # None: real ids

    @classmethod
    def of(cls, kinds: Iterable[str] | str | None, key: str | None) -> Privacy:
        """From sensor kinds (an iterable, or comma-separated) and an optional key."""
        if isinstance(kinds, str):
            kinds = [k.strip() for k in kinds.split(",") if k.strip()]
        chosen = frozenset(kinds) if kinds else None
        return cls(chosen, key.encode() if key else None)

    def harvests(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    def pseudonym(self, citizen_id: str) -> str:
        if self.key is None:
            return citizen_id
        digest = hmac.new(self.key, citizen_id.encode(), hashlib.sha256).hexdigest()
        return f"p-{digest[:16]}"

    def apply(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """The record as the harvester may see it."""
        if self.key is None:
            return record
        out = dict(record)
        for f in ID_FIELDS:
            out[f] = self.pseudonym(str(record[f]))
        for f in LIST_FIELDS:
            if f in record:
                out[f] = sorted(self.pseudonym(str(c)) for c in record[f])
        return out
