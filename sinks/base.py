"""The sink contract: what a sink writes (the processor's outputs), nothing of Kafka.

The processor's outputs arrive on three topics: ``doubles`` (profiles, upserted by
version), ``ledger`` (entries, appended once per (event, rule)) and ``blacklist``
(the latest state of each period, upserted or deleted by version). A sink persists
one :class:`Harvest` per :meth:`Sink.write`, atomically and idempotently;
``sinks.runner`` feeds it from Kafka.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Double = dict[str, Any]
Record = dict[str, Any]


@dataclass
class Harvest:
    """One batch of the processor's outputs: profiles, ledger entries, period updates."""

    doubles: list[Double] = field(default_factory=list)
    ledger: list[Record] = field(default_factory=list)
    blacklist: list[Record] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.doubles) + len(self.ledger) + len(self.blacklist)

    @classmethod
    def of(cls, doubles: Iterable[Double]) -> Harvest:
        """Whole doubles (an oracle's, a test's) with the ledger entries and periods they
        hold, as the processor would have sent them."""
        out = cls()
        for d in doubles:
            cid = d["citizen_id"]
            out.doubles.append(d)
            out.ledger += [{"citizen_id": cid, **e} for e in d["ledger"]]
            out.blacklist += [
                {
                    "citizen_id": cid,
                    **p,
                    "removed": False,
                    "double_version": d["version"],
                }
                for p in d["blacklist"]
            ]
        return out


class Sink(ABC):
    """Somewhere the processor's outputs are persisted."""

    @abstractmethod
    def write(self, batch: Harvest | Sequence[Double]) -> int:
        """Persist a batch atomically (whole doubles: see :meth:`Harvest.of`); return
        how many profiles advanced."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""

    def reset(self) -> None:  # noqa: B027 (optional hook)
        """Drop connections after a failed write, so the retry opens fresh ones."""


def latest_per_citizen(batch: Sequence[Double]) -> list[Double]:
    """Keep only the highest version of each citizen (one row per key per statement)."""
    best: dict[str, Double] = {}
    for d in batch:
        cur = best.get(d["citizen_id"])
        if cur is None or d["version"] > cur["version"]:
            best[d["citizen_id"]] = d
    return list(best.values())
