"""The sink contract: what a sink writes (the processor's outputs), nothing of Kafka.

The processor's outputs arrive on three topics: ``doubles`` (profiles, upserted by
version), ``ledger`` (entries, appended once per (event, rule)) and ``blacklist``
(the latest state of each period, upserted or deleted by version). A sink persists
one :class:`SinkBatch` per :meth:`Sink.write`, atomically and idempotently;
``sinks.runner`` feeds it from Kafka. A sink also says which records it would refuse
(:meth:`Sink.refuse`) and which failures are worth retrying (:meth:`Sink.is_transient`):
the runner sets refused records aside instead of retrying them forever.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Double = dict[str, Any]
Record = dict[str, Any]

#: The kinds of record a sink persists (the fields of :class:`SinkBatch`).
KINDS = ("doubles", "ledger", "blacklist")


@dataclass(frozen=True)
class Refusal:
    """Why a sink will not (or could not) persist one record: a reason for the
    dead-letter header (``too-long``, ``database-refused``…) and a detail for people."""

    reason: str
    detail: str


@dataclass
class SinkBatch:
    """One batch of the processor's outputs: profiles, ledger entries, period updates."""

    doubles: list[Double] = field(default_factory=list)
    ledger: list[Record] = field(default_factory=list)
    blacklist: list[Record] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.doubles) + len(self.ledger) + len(self.blacklist)

    def of_kind(self, kind: str) -> list[Record]:
        """The records of one of :data:`KINDS`."""
        rows: list[Record] = getattr(self, kind)
        return rows

    @classmethod
    def of(cls, doubles: Iterable[Double]) -> SinkBatch:
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
    def write(self, batch: SinkBatch | Sequence[Double]) -> int:
        """Persist a batch atomically (whole doubles: see :meth:`SinkBatch.of`); return
        how many profiles advanced."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""

    def reset(self) -> None:  # noqa: B027 (optional hook)
        """Drop connections after a failed write, so the retry opens fresh ones."""

    def refuse(self, kind: str, record: Record) -> Refusal | None:
        """Why this record (one of :data:`KINDS`) cannot be written, checked before the
        write; None when it can. Refusing here spares the database a failed batch."""
        return None

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a failed write is worth retrying as it is (the database is away or
        busy), rather than a refusal of some record in the batch."""
        return isinstance(exc, OSError)

    def refusal(self, exc: BaseException) -> Refusal:
        """The refusal of a one-record batch whose write failed with ``exc``."""
        return Refusal("write-error", f"{type(exc).__name__}: {first_line(exc)}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (database errors span several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def latest_per_citizen(batch: Sequence[Double]) -> list[Double]:
    """Keep only the highest version of each citizen (one row per key per statement)."""
    best: dict[str, Double] = {}
    for d in batch:
        cur = best.get(d["citizen_id"])
        if cur is None or d["version"] > cur["version"]:
            best[d["citizen_id"]] = d
    return list(best.values())
