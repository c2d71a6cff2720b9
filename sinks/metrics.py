"""What the sink's runner counts into, as the runner sees it: ``moisson.metrics.SinkMetrics``
(the Prometheus families, served by the ``moisson sink`` command) is one, passed in by
the entry point; without one, :class:`Uncounted` counts nowhere. This package imports
nothing of moisson.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class SinkCounts(Protocol):
    """The sink's figures (``moisson.metrics.SinkMetrics`` names and documents each):
    ``consumed``, ``written``, ``errors`` and ``dead_letters`` are counters by label
    (``.labels(...).inc()``), ``undecodable`` and ``retries`` counters (``.inc()``),
    ``batch_seconds`` a histogram (``.observe(s)``), ``lag`` a gauge per source partition
    (``.set_all(lag)``). Typed loosely: Prometheus' own types are what is passed in."""

    consumed: Any
    written: Any
    errors: Any
    dead_letters: Any
    undecodable: Any
    retries: Any
    batch_seconds: Any
    lag: Any


class _Nothing:
    """Every figure of :class:`Uncounted`: it counts nothing."""

    def inc(self, amount: float = 1) -> None:
        pass

    def labels(self, *labelvalues: Any) -> _Nothing:
        return self

    def observe(self, amount: float) -> None:
        pass

    def set_all(self, lag: Mapping[tuple[str, int], int]) -> None:
        pass


class Uncounted:
    """The sink's figures when nobody serves them: counted nowhere."""

    consumed = written = undecodable = batch_seconds = _Nothing()
    errors = dead_letters = retries = lag = _Nothing()
