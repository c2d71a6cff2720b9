"""Every metric family moisson exports, one class per service.

A class builds its families on the registry it is given (a fresh one by default), so
building one registers nothing process-wide. Names are listed in the README (Metrics),
and the Grafana dashboard (``deploy/grafana``) queries them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.kinds import SENSOR_KINDS

#: Seconds: from a millisecond to ten seconds (a batch is planned or written in between).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Events or records in one batch.
SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)

Source = tuple[str, int]  # (topic, partition)


class LagGauge:
    """Events behind the high-water mark, per topic and partition; partitions no longer
    reported (revoked, reassigned) are removed, not left at their last value."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.gauge = Gauge(name, documentation, ["topic", "partition"], registry=registry)
        self._shown: set[Source] = set()

    def set_all(self, lag: Mapping[Source, int]) -> None:
        for topic, partition in self._shown - set(lag):
            self.gauge.remove(topic, str(partition))
        for (topic, partition), n in lag.items():
            self.gauge.labels(topic, str(partition)).set(n)
        self._shown = set(lag)


class ProcessorMetrics:
    """The faust worker's (the harvester's) figures, counted once per batch."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        self.consumed = Counter(
            "moisson_events_consumed",
            "Sensor messages delivered to the harvester, per topic",
            ["topic"],
            registry=r,
        )
        self.applied = Counter(
            "moisson_events_applied",
            "Sensor events folded into a double (rejections and duplicates aside)",
            registry=r,
        )
        self.rejected = Counter(
            "moisson_events_rejected",
            "Sensor messages not folded, per reason (duplicates and unharvested kinds too)",
            ["reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "moisson_dead_letters",
            "Messages sent to the dead-letter topic, per reason (the moisson.reason header)",
            ["reason"],
            registry=r,
        )
        self.sanctions = Counter(
            "moisson_sanctions_emitted",
            "Sanctions sent: blacklisted, or cleared (lifted)",
            ["sanction"],
            registry=r,
        )
        self.ledger = Counter(
            "moisson_ledger_entries_emitted",
            "Score ledger entries sent to the ledger topic",
            registry=r,
        )
        self.fold_seconds = Histogram(
            "moisson_fold_batch_seconds",
            "Seconds to plan (fold) one batch, before its sends",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_events = Histogram(
            "moisson_fold_batch_events",
            "Sensor messages per batch",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.lag = LagGauge(
            "moisson_processor_lag_events",
            "Events between the harvester's committed position and the high-water mark",
            r,
        )

    def observe_batch(
        self,
        *,
        consumed: Mapping[str, int],
        applied: int,
        rejected: Mapping[str, int],
        dead_letters: Mapping[str, int],
        sanctions: Mapping[str, int],
        ledger: int,
        seconds: float,
    ) -> None:
        """Count one planned batch."""
        for topic, n in consumed.items():
            self.consumed.labels(topic).inc(n)
        self.applied.inc(applied)
        for reason, n in rejected.items():
            self.rejected.labels(reason).inc(n)
        for reason, n in dead_letters.items():
            self.dead_letters.labels(reason).inc(n)
        for sanction, n in sanctions.items():
            self.sanctions.labels(sanction).inc(n)
        self.ledger.inc(ledger)
        self.fold_seconds.observe(seconds)
        self.batch_events.observe(sum(consumed.values()))


class SinkMetrics:
    """The PostgreSQL sink's figures, counted once per batch."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        self.consumed = Counter(
            "moisson_sink_records_consumed",
            "Records the sink read from Kafka, per topic",
            ["topic"],
            registry=r,
        )
        self.written = Counter(
            "moisson_sink_records_written",
            "Records in committed database transactions, per record (double, ledger, "
            "blacklist); a replayed record the version guard ignores counts too",
            ["record"],
            registry=r,
        )
        self.undecodable = Counter(
            "moisson_sink_undecodable_records",
            "Records skipped because they are none of the sink's Avro records",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "moisson_sink_batch_seconds",
            "Seconds of one successful database write (one transaction)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "moisson_sink_database_errors",
            "Failed database writes, per exception class (a transient one is retried, "
            "any other splits the batch to set the refused records aside)",
            ["error"],
            registry=r,
        )
        self.dead_letters = Counter(
            "moisson_sink_dead_letters",
            "Records the sink set aside on its dead-letter topic, per reason (the "
            "moisson.reason header)",
            ["reason"],
            registry=r,
        )
        self.retries = Counter(
            "moisson_sink_retries",
            "Writes attempted again after a failure",
            registry=r,
        )
        self.lag = LagGauge(
            "moisson_sink_lag_events",
            "Records between the sink's position and the high-water mark",
            r,
        )
        self.blacklisted = Gauge(
            "moisson_blacklisted_citizens",
            "Citizens on the blacklist now, as PostgreSQL holds it (read at each scrape)",
            registry=r,
        )

    def count_blacklisted(self, reader: Callable[[], int]) -> None:
        """Read the blacklist's size from ``reader`` at each scrape (None when it fails)."""

        def read() -> float:
            try:
                return float(reader())
            except Exception:  # the database is down: no value rather than a stale one
                return float("nan")

        self.blacklisted.set_function(read)


class SensorMetrics:
    """The sensors' figures, counted per send (the label children are bound once)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        sent = Counter(
            "moisson_sensor_events_sent",
            "Sensor events handed to the Kafka producer, per sensor kind",
            ["kind"],
            registry=r,
        )
        errors = Counter(
            "moisson_sensor_send_errors",
            "Sensor events the broker did not acknowledge, per sensor kind",
            ["kind"],
            registry=r,
        )
        self.sent = {k: sent.labels(k) for k in SENSOR_KINDS}
        self.errors = {k: errors.labels(k) for k in SENSOR_KINDS}


class DashboardMetrics:
    """The dashboard's own figures (the pipeline's are the other services')."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "moisson_dashboard_requests",
            "HTTP requests served, per route",
            ["route"],
            registry=r,
        )
        self.stream_clients = Gauge(
            "moisson_dashboard_stream_clients",
            "Browsers following the live event stream",
            registry=r,
        )
