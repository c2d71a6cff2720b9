"""ensure_topics on a real broker: the dead-letter topic is created with its own
retention, in days and in bytes per partition, not the broker's week without a byte cap."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from moisson.settings import Settings
from producers.publisher import ensure_topics

pytestmark = pytest.mark.integration

LIMITS = ("cleanup.policy", "retention.ms", "retention.bytes", "segment.ms", "segment.bytes")


def topic_configs(settings: Settings, topic: str) -> dict[str, str]:
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    return {k: v["value"] for k, v in described["topic"][topic].items() if k in LIMITS}


def test_the_dead_letter_topic_is_created_with_the_configured_retention(settings: Settings):
    settings.topics.dlq_retention_days = 3
    settings.topics.dlq_retention_bytes = 32 * 1024 * 1024
    assert settings.topics.dlq in ensure_topics(settings)
    assert topic_configs(settings, settings.topics.dlq) == {
        "cleanup.policy": "delete",
        "retention.ms": str(3 * 24 * 3600 * 1000),
        "retention.bytes": str(32 * 1024 * 1024),
        "segment.ms": str(3 * 24 * 3600 * 1000 // 4),
        "segment.bytes": str(8 * 1024 * 1024),
    }
    # The sensor topics keep the broker's retention (the tests' broker keeps everything).
    sensor = topic_configs(settings, settings.topics.sensor("book"))
    assert sensor.get("retention.bytes", "-1") == "-1"
