"""The sensors' figures: every send counted by kind, every unacknowledged one too."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

from moisson.metrics import SensorMetrics
from moisson.resolvers import registry_client
from moisson.settings import Settings
from producers.city import generate_events
from producers.publisher import Publisher


class RefusingProducer:
    """Acknowledges every send but those to the camera topic, which time out."""

    def __init__(self, refused_topic: str) -> None:
        self.refused_topic = refused_topic

    def send(self, topic, key=None, value=None):
        fut = Future()
        if topic == self.refused_topic:
            fut.failure(KafkaTimeoutError("no broker acknowledged it"))
        else:
            fut.success(None)
        return fut

    def flush(self) -> None: ...


def test_sends_and_send_errors_are_counted_per_kind():
    s = Settings()
    metrics = SensorMetrics()
    events = list(generate_events(3, 30, 400))
    publisher = Publisher(
        s,
        producer=RefusingProducer(s.topics.sensor("camera")),
        metrics=metrics,
        registry=registry_client(s),
    )
    with pytest.raises(RuntimeError, match="sends failed"):
        publisher.publish(events)
    r = metrics.registry
    for kind in ("metro", "payment", "book", "camera"):
        n = sum(1 for e in events if e.kind == kind)
        assert n, kind
        assert r.get_sample_value("moisson_sensor_events_sent_total", {"kind": kind}) == n
        errors = r.get_sample_value("moisson_sensor_send_errors_total", {"kind": kind})
        assert errors == (n if kind == "camera" else 0)
