"""Prometheus metrics: every family moisson exports (:mod:`.families`) and the one way
to serve a registry on ``/metrics`` (:mod:`.serve`).

Names follow the client's conventions: a ``moisson_`` prefix, base units (seconds),
``_total`` counters, and labels of low cardinality (a topic, a reason, a sensor kind;
never a citizen id). Each service builds its own families on a fresh registry, so
nothing is registered at import and tests never share counters.
"""

from moisson.metrics.families import (
    DashboardMetrics,
    ProcessorMetrics,
    SensorMetrics,
    SinkMetrics,
)
from moisson.metrics.serve import MetricsError, MetricsServer, serve

__all__ = [
    "DashboardMetrics",
    "MetricsError",
    "MetricsServer",
    "ProcessorMetrics",
    "SensorMetrics",
    "SinkMetrics",
    "serve",
]
