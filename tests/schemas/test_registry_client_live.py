"""Schema registry mode against a real Apicurio Registry, Kafka, faust and PostgreSQL."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from moisson.ops import pipeline
from moisson.ops.dlq import read_dead_letters
from moisson.ops.read_to_end import read_to_end
from moisson.resolvers import id_resolver, registry_client
from moisson.settings import Settings
from processors.core.fold import Event, fold_all
from processors.core.oracle import Oracle
from producers.city import generate_events
from producers.publisher import Publisher, ensure_topics
from schemas.codec import (
    SENSOR_SCHEMAS,
    CodecError,
    Reason,
    decode,
    encode_confluent,
    schema_from_json,
    schema_id_of,
)
from schemas.registry_client import SchemaRegistryClient, subject_for
from tests.factories import pg_reader
from tests.moisson.ops.test_pipeline import assert_postgres_equals_oracle, start, wait_applied

pytestmark = pytest.mark.integration


@pytest.fixture
def registry_settings(settings: Settings, schema_registry_url: str) -> Settings:
    return settings.replace(registry={"url": schema_registry_url})


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def register_raw(url: str, subject: str, schema: object) -> int:
    """Register any schema JSON under ``subject``, as anyone may on a registry without
    auth; its id."""
    body = json.dumps({"schema": json.dumps(schema), "schemaType": "AVRO"}).encode()
    req = urllib.request.Request(
        f"{url}/subjects/{subject}/versions",
        data=body,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(json.loads(resp.read())["id"])


ARRAY_OF_NULLS = {"type": "array", "items": "null"}


def sensor_values(settings: Settings) -> list[bytes]:
    """Every value on the sensor topics, read from the start to their end (the end
    ListOffsets or the fetches' high-water marks report, :func:`read_to_end`, then a
    quarter second without a record); the topics are complete when read."""
    consumer = KafkaConsumer(**settings.kafka.client_kwargs(), enable_auto_commit=False)
    tps = [
        TopicPartition(topic, p)
        for topic in settings.topics.sensors
        for p in range(settings.kafka.partitions)
    ]
    values: list[bytes] = []
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning()
        read_to_end(consumer, tps, lambda _, rec: values.append(rec.value), 60.0, 0.25)
    finally:
        consumer.close()
    return values


def test_publisher_registers_topic_value_subjects(registry_settings: Settings):
    url = registry_settings.registry.url
    assert url is not None
    ensure_topics(registry_settings)
    publisher = Publisher(registry_settings, registry=registry_client(registry_settings))
    events = list(generate_events(11, 40, 400))
    assert publisher.publish(events) == len(events)
    publisher.close()

    subjects = set(get_json(f"{url}/subjects"))
    for kind, schema in SENSOR_SCHEMAS.items():
        subject = subject_for(registry_settings.topics.sensor(kind))
        assert subject in subjects
        latest = get_json(f"{url}/subjects/{subject}/versions/latest")
        assert schema_from_json(latest["schema"]).fingerprint == schema.fingerprint
        by_id = get_json(f"{url}/schemas/ids/{latest['id']}")
        assert schema_from_json(by_id["schema"]).fingerprint == schema.fingerprint

    values = sensor_values(registry_settings)
    assert len(values) == len(events)
    assert all(schema_id_of(v) is not None for v in values), "registry mode writes Confluent"
    resolver = id_resolver(registry_settings)
    assert resolver is not None
    decoded = sorted(str(decode(v, resolver=resolver)[1]["event_id"]) for v in values)
    assert decoded == sorted(str(e.record["event_id"]) for e in events)


def test_a_topic_with_both_framings_is_applied_exactly_once(
    registry_settings: Settings, procs, tmp_path: Path
):
    """Half the events registry-framed, half single objects, interleaved on the same
    topics; plus messages naming a schema id the registry never issued (dead letters)."""
    events = list(generate_events(2027, 200, 2400, sanctions=Oracle()))
    expected = fold_all(Event(e.kind, e.record) for e in events)

    ensure_topics(registry_settings)
    registry_pub = Publisher(registry_settings, registry=registry_client(registry_settings))
    plain_settings = registry_settings.replace(registry={"url": None})
    plain_pub = Publisher(
        plain_settings, producer=registry_pub.producer, registry=registry_client(plain_settings)
    )
    assert plain_pub.framer is None and registry_pub.framer is not None
    for i, ev in enumerate(events):
        (registry_pub if i % 2 else plain_pub).send(ev)

    # Bytes in the Confluent framing with ids no registry issued: unknown-schema-id, kept.
    strangers = list(generate_events(99, 5, 40))[:2]
    unknown = [
        encode_confluent(SENSOR_SCHEMAS[ev.kind], 2_000_000_000 + n, ev.record)
        for n, ev in enumerate(strangers)
    ]
    # The 16-byte attack: an array<null> schema anyone may register, 2^62 items declared.
    assert registry_settings.registry.url is not None
    subject = f"evil-{registry_settings.topics.prefix.strip('.')}-value"
    evil = register_raw(registry_settings.registry.url, subject, ARRAY_OF_NULLS)
    attack = b"\x00" + evil.to_bytes(4, "big") + b"\x80" * 9 + b"\x01\x00"
    for ev, value in [*zip(strangers, unknown, strict=True), (strangers[0], attack)]:
        registry_pub.producer.send(
            registry_settings.topics.sensor(ev.kind), key=ev.citizen_id.encode(), value=value
        )
    registry_pub.producer.flush()
    assert not registry_pub.errors and not plain_pub.errors
    registry_pub.close()

    framings = [schema_id_of(v) is not None for v in sensor_values(registry_settings)]
    assert framings.count(True) == len(events) // 2 + len(unknown) + 1
    assert framings.count(False) == len(events) - len(events) // 2

    _, sink, alive = start(registry_settings, procs, tmp_path)
    pg = pg_reader(
        registry_settings.database.sqlalchemy_url(), registry_settings.database.schema_name
    )
    assert wait_applied(pg, len(events), alive) == len(events), "an event was applied twice"
    assert_postgres_equals_oracle(pg, expected)
    pg.close()

    letters = pipeline.wait_for(
        lambda: read_dead_letters(registry_settings, keep=100),
        lambda d: d.total >= len(unknown) + 1,
        timeout=60,
    )
    assert dict(letters.by_reason) == {"unknown-schema-id": len(unknown), "unknown-schema": 1}
    assert {d["value"] for d in letters.latest} == {*unknown, attack}
    for d in letters.latest:
        reason = Reason.UNKNOWN_SCHEMA if d["value"] == attack else Reason.UNKNOWN_SCHEMA_ID
        assert d["detail"].startswith(reason.value + ":"), d
    assert sink.poll() is None


def test_the_registry_client_caches_and_resolves(schema_registry_url: str, run_id: str):
    client = SchemaRegistryClient(schema_registry_url)
    metro = SENSOR_SCHEMAS["metro"]
    subject = f"client-{run_id}-value"
    first = client.register(subject, metro)
    assert client.register(subject, metro) == first
    assert subject in client.subjects()
    fresh = SchemaRegistryClient(schema_registry_url)
    assert fresh.resolve(first) is metro  # matched to our schema by canonical fingerprint
    assert fresh.resolve(2_000_000_123) is None  # Apicurio's 404 says "not found" (40403)
    assert fresh.cached(2_000_000_123) is None, "an unknown id is cached"
    foreign = register_raw(schema_registry_url, f"foreign-{run_id}-value", ARRAY_OF_NULLS)
    with pytest.raises(CodecError) as info:
        fresh.resolve(foreign)
    assert info.value.reason is Reason.UNKNOWN_SCHEMA
    wrong = SchemaRegistryClient(schema_registry_url.removesuffix("/apis/ccompat/v7"), attempts=1)
    with pytest.raises(CodecError) as info:
        wrong.resolve(first)  # a URL without the API's path: unavailable, not unknown
    assert info.value.reason is Reason.REGISTRY_UNAVAILABLE
