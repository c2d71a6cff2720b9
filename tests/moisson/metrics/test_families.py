"""The metric families: names, labels, and what one batch, write or send adds."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import generate_latest

from moisson.metrics import (
    DashboardMetrics,
    MetricsError,
    ProcessorMetrics,
    SensorMetrics,
    SinkMetrics,
    serve,
)
from schemas.kinds import SENSOR_KINDS


def sample(registry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels or None)


def test_a_batch_is_counted_once_with_low_cardinality_labels():
    m = ProcessorMetrics()
    m.observe_batch(
        consumed={"sensors.metro": 3, "sensors.camera": 2},
        applied=3,
        rejected={"duplicate": 1, "oversize": 1},
        dead_letters={"oversize": 1},
        sanctions={"blacklisted": 1},
        ledger=4,
        seconds=0.02,
    )
    r = m.registry
    assert sample(r, "moisson_events_consumed_total", topic="sensors.metro") == 3
    assert sample(r, "moisson_events_applied_total") == 3
    assert sample(r, "moisson_events_rejected_total", reason="duplicate") == 1
    assert sample(r, "moisson_dead_letters_total", reason="oversize") == 1
    assert sample(r, "moisson_sanctions_emitted_total", sanction="blacklisted") == 1
    assert sample(r, "moisson_ledger_entries_emitted_total") == 4
    assert sample(r, "moisson_fold_batch_seconds_count") == 1
    assert sample(r, "moisson_fold_batch_seconds_bucket", le="0.025") == 1
    assert sample(r, "moisson_fold_batch_seconds_bucket", le="0.01") == 0
    assert sample(r, "moisson_fold_batch_events_sum") == 5


def test_every_family_is_prefixed_and_counters_end_in_total():
    registries = [
        ProcessorMetrics().registry,
        SinkMetrics().registry,
        SensorMetrics().registry,
        DashboardMetrics().registry,
    ]
    for r in registries:
        for family in r.collect():
            assert family.name.startswith("moisson_"), family.name
            if family.type == "counter":
                text = generate_latest(r).decode()
                assert f"# TYPE {family.name}_total counter" in text


def test_each_service_has_its_own_registry():
    """Nothing is registered process-wide: two workers' figures never mix."""
    a, b = ProcessorMetrics(), ProcessorMetrics()
    a.applied.inc(5)
    assert sample(b.registry, "moisson_events_applied_total") == 0


def test_lag_of_a_partition_no_longer_reported_is_removed():
    m = ProcessorMetrics()
    m.lag.set_all({("sensors.metro", 0): 7, ("sensors.metro", 1): 0})
    assert (
        sample(m.registry, "moisson_processor_lag_events", topic="sensors.metro", partition="0")
        == 7
    )
    m.lag.set_all({("sensors.metro", 1): 2})  # partition 0 was revoked
    assert (
        sample(m.registry, "moisson_processor_lag_events", topic="sensors.metro", partition="0")
        is None
    )
    assert (
        sample(m.registry, "moisson_processor_lag_events", topic="sensors.metro", partition="1")
        == 2
    )


def test_the_blacklist_gauge_reads_at_scrape_and_is_nan_when_the_database_fails():
    m = SinkMetrics()
    size = [3]
    m.count_blacklisted(lambda: size[0])
    assert sample(m.registry, "moisson_blacklisted_citizens") == 3
    size[0] = 4
    assert sample(m.registry, "moisson_blacklisted_citizens") == 4

    def down() -> int:
        raise OSError("connection refused")

    m.count_blacklisted(down)
    value = sample(m.registry, "moisson_blacklisted_citizens")
    assert value is not None and value != value  # NaN: no value, not a stale one


def test_sensor_children_cover_every_kind():
    m = SensorMetrics()
    assert set(m.sent) == set(SENSOR_KINDS) == set(m.errors)
    m.sent["metro"].inc()
    assert sample(m.registry, "moisson_sensor_events_sent_total", kind="metro") == 1


def test_serve_on_port_zero_reports_the_port_it_took():
    m = ProcessorMetrics()
    m.applied.inc(2)
    server = serve(m.registry, "127.0.0.1", 0, "processor", "METRICS_PROCESSOR_PORT")
    try:
        assert server.port > 0
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            body = resp.read().decode()
        assert "moisson_events_applied_total 2.0" in body
    finally:
        server.close()


def test_a_taken_port_is_an_error_naming_the_env_var():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsError) as err:
            serve(SinkMetrics().registry, "127.0.0.1", port, "sink", "METRICS_SINK_PORT")
    assert f"127.0.0.1:{port}" in str(err.value)
    assert "METRICS_SINK_PORT" in err.value.fix
