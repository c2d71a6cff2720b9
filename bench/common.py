"""What every bench part returns: one figure against a baseline from the same run.

Shared by ``bench/run.py`` and the parts that also run on their own (``bench/growth.py``),
so a standalone part does not import the service-starting runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """One bench figure: ``value`` against ``baseline``, and whether ``target`` is met."""

    id: str
    value: float | None
    unit: str
    baseline: float | None
    ratio: float | None
    target: str
    met: bool | None
    detail: dict[str, Any] = field(default_factory=dict)
