"""What the sink's runner counts into, as the runner sees it: ``moisson.metrics.SinkMetrics``
(the Prometheus families, served by the ``moisson sink`` command) is one, passed in by
the entry point; without one, :class:`Uncounted` counts nowhere. This package imports
nothing of moisson.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Count(Protocol):
    """A counter (one Prometheus counter, or one child bound to its labels)."""

    def inc(self, amount: float = 1) -> None: ...


class Labelled(Protocol):
    """A counter with labels: :meth:`labels` gives the child to count into."""

    def labels(self, *labelvalues: Any) -> Count: ...


class Timing(Protocol):
    """A histogram of durations."""

    def observe(self, amount: float) -> None: ...


class Lag(Protocol):
    """Records behind the high-water mark, per (topic, partition) assigned now."""

    def set_all(self, lag: Mapping[tuple[str, int], int]) -> None: ...


class SinkCounts(Protocol):
    """The sink's figures (``moisson.metrics.SinkMetrics`` names and documents each)."""

    @property
    def consumed(self) -> Labelled: ...

    @property
    def written(self) -> Labelled: ...

    @property
    def undecodable(self) -> Count: ...

    @property
    def batch_seconds(self) -> Timing: ...

    @property
    def errors(self) -> Labelled: ...

    @property
    def dead_letters(self) -> Labelled: ...

    @property
    def retries(self) -> Count: ...

    @property
    def lag(self) -> Lag: ...


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
