"""Writing a batch whatever it holds: transient failures are retried with backoff, a
refused batch is bisected until each refused record stands alone.

A write that fails for the database's sake (:meth:`Sink.is_transient`) is retried as
it is, never skipped, so an outage delays the batch and loses nothing. Any other
failure points at some record of the batch: the batch is split in halves, each
written (or split again), so the good records are written and each refused one is
returned with its :class:`Refusal`, in O(refused × log(batch)) writes. Every write is
idempotent (version guards, ``ON CONFLICT``), so the halves may land in any order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sinks.base import KINDS, Double, Record, Refusal, Sink, SinkBatch, first_line
from sinks.metrics import SinkCounts, Uncounted

log = logging.getLogger(__name__)

#: The last failures :class:`SinkStats` keeps (a hostile stream must not grow it).
ERRORS_KEPT = 100


@dataclass
class SinkStats:
    consumed: int = 0
    written: int = 0
    undecodable: int = 0
    dead_letters: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    """One consumed record: its kind (one of :data:`sinks.base.KINDS`), its decoded
    fields, and the Kafka message it came in (topic, partition, offset, key, value)."""

    kind: str
    record: Record
    message: Any


class Refused(Exception):
    """A write failed in a way retrying cannot fix: some record of the batch is at fault."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {first_line(cause)}")
        self.cause = cause


def batch_of(items: Sequence[Item]) -> SinkBatch:
    out = SinkBatch()
    for item in items:
        out.of_kind(item.kind).append(item.record)
    return out


def pause(seconds: float, should_stop: Callable[[], bool], sleep: Callable[[float], None]) -> bool:
    """Sleep ``seconds`` in small steps; False as soon as asked to stop."""
    waited = 0.0
    while waited < seconds:
        if should_stop():
            return False
        step = min(0.25, seconds - waited)
        sleep(step)
        waited += step
    return True


def write_with_retry(
    sink: Sink,
    batch: SinkBatch | Sequence[Double],
    stats: SinkStats,
    retry_max_s: float,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
    metrics: SinkCounts | None = None,
) -> int | None:
    """Write ``batch`` until it succeeds; None if asked to stop first.

    Only transient failures are retried (backoff doubling up to ``retry_max_s``); any
    other raises :class:`Refused` at once.
    """
    m: SinkCounts = metrics if metrics is not None else Uncounted()
    delay = min(0.5, retry_max_s)
    failed_at: float | None = None
    attempts = 0
    while True:
        if attempts:
            m.retries.inc()
        began = time.perf_counter()
        try:
            written = sink.write(batch)
        except Exception as exc:
            m.errors.labels(type(exc).__name__).inc()
            stats.errors.append(str(exc))
            del stats.errors[:-ERRORS_KEPT]
            if not sink.is_transient(exc):
                raise Refused(exc) from exc
            attempts += 1
            if failed_at is None:
                failed_at = time.monotonic()
            log.error(
                "sink write failed (attempt %d, %s: %s); retrying in %.1fs",
                attempts,
                type(exc).__name__,
                first_line(exc),
                delay,
            )
            sink.reset()
            if not pause(delay, should_stop, sleep):
                return None
            delay = min(delay * 2, retry_max_s)
            continue
        m.batch_seconds.observe(time.perf_counter() - began)
        if failed_at is not None:
            log.warning(
                "sink write succeeded after %d failed attempt(s) over %.1fs; resuming",
                attempts,
                time.monotonic() - failed_at,
            )
        return written


@dataclass
class Written:
    """What :func:`write_items` did: profiles advanced, records written per kind, and
    the records refused (each alone) with why."""

    advanced: int = 0
    per_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    refused: list[tuple[Item, Refusal]] = field(default_factory=list)


def write_items(
    sink: Sink,
    items: Sequence[Item],
    stats: SinkStats,
    retry_max_s: float,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
    metrics: SinkCounts | None = None,
) -> Written | None:
    """Write ``items``, bisecting a refused write down to its refused records; None if
    asked to stop first (nothing may then be committed)."""
    out = Written()
    pending = [list(items)] if items else []
    while pending:
        part = pending.pop()
        try:
            advanced = write_with_retry(
                sink, batch_of(part), stats, retry_max_s, should_stop, sleep, metrics
            )
        except Refused as exc:
            if len(part) == 1:
                out.refused.append((part[0], sink.refusal(exc.cause)))
                continue
            log.warning(
                "a write of %d records was refused (%s); splitting it to set the refused"
                " record(s) aside",
                len(part),
                exc,
            )
            half = len(part) // 2
            pending += [part[half:], part[:half]]
            continue
        if advanced is None:
            return None
        out.advanced += advanced
        for item in part:
            out.per_kind[item.kind] += 1
    return out
