"""ensure_topics on a real broker: the dead-letter topic is created with its own
retention, in days and in bytes per partition, not the broker's week without a byte cap."""

from __future__ import annotations

import time
from collections.abc import Callable

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


def settled(check: Callable[[], bool], within_s: float = 10.0) -> bool:
    """Whether ``check`` holds within ``within_s``: a broker applies a config change
    from its metadata log a moment after the controller said OK."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_the_dead_letter_topic_is_created_with_the_configured_retention(settings: Settings):
    settings = settings.replace(
        topics={"dlq_retention_days": 3, "dlq_retention_bytes": 32 * 1024 * 1024}
    )
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


def test_an_existing_topics_configs_are_fixed_once(settings: Settings):
    """A doubles topic made by an older moisson (compacted, a week-long segment) and a
    positions changelog as faust made it get the configs moisson wants, and say so."""
    from click.testing import CliRunner
    from kafka.admin import NewTopic

    from moisson.cli import main
    from schemas.topics import positions_changelog

    positions = positions_changelog(settings.processor.app_id)
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        admin.create_topics(
            [
                NewTopic(name, 2, 1, topic_configs={"cleanup.policy": "compact"})
                for name in (settings.topics.doubles, positions)
            ]
        )
    finally:
        admin.close()
    settings = settings.replace(topics={"compact_segment_s": 90})
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "TOPICS_PREFIX": settings.topics.prefix,
        "PROCESSOR_APP_ID": settings.processor.app_id,
        "TOPICS_COMPACT_SEGMENT_S": "90",
    }
    first = CliRunner().invoke(main, ["topics"], env=env)
    assert first.exit_code == 0, first.output
    wanted = {
        "cleanup.policy": "compact",
        "segment.ms": "90000",
        "segment.bytes": str(64 * 1024 * 1024),
    }
    for name in (settings.topics.doubles, positions):
        assert f"fixed   {name}: " in first.output, first.output
        assert settled(lambda n=name: topic_configs(settings, n) == wanted), name
    assert f"fixed   {settings.topics.sanctions}" not in first.output, "created right"
    again = CliRunner().invoke(main, ["topics"], env=env)
    assert again.exit_code == 0, again.output
    assert "fixed" not in again.output
