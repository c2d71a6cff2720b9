"""Kafka with SASL/PLAIN on loopback, for real: every client logs in through the settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.errors import KafkaError
from pydantic import SecretStr

from moisson.ops import pipeline
from moisson.resolvers import registry_client
from moisson.settings import Settings, settings_env
from moisson.stack import ApacheKafka
from processors.core.fold import Event, fold_all
from processors.core.oracle import Oracle
from producers.city import generate_events
from producers.publisher import Publisher, ensure_topics
from schemas.codec import DOUBLE
from tests.moisson.ops.test_pipeline import latest_per_citizen

pytestmark = pytest.mark.integration

USERS = {"admin": "admin-dev-secret", "moisson": "moisson-dev-secret"}


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of its own whose only client listener is SASL_PLAINTEXT."""
    s = Settings()
    broker = ApacheKafka(
        tmp_path_factory.mktemp("sasl-kafka"),
        s.stack.kafka_version,
        s.stack.cache_dir,
        sasl_users=USERS,
    )
    try:
        yield broker.start()
    finally:
        broker.stop()


def login(settings: Settings, bootstrap: str, password: str) -> Settings:
    return settings.replace(
        kafka={
            "bootstrap_servers": bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "moisson",
            "sasl_password": SecretStr(password),
        }
    )


def test_sensors_and_the_faust_worker_log_in_with_sasl_plain(
    sasl_kafka, settings, procs, tmp_path: Path
):
    settings = login(settings, sasl_kafka, USERS["moisson"])
    events = list(generate_events(11, 40, 600, sanctions=Oracle()))
    expected = fold_all(Event(e.kind, e.record) for e in events)

    ensure_topics(settings)
    publisher = Publisher(settings, registry=registry_client(settings))
    assert publisher.publish(events) == len(events)
    publisher.close()
    worker, _ = pipeline.start_worker_ready(settings, tmp_path / "worker.log", timeout=180)
    procs.append(worker)

    got = pipeline.wait_for(
        lambda: latest_per_citizen(settings, settings.topics.doubles, DOUBLE),
        lambda d: sum(x["version"] for x in d.values()) >= len(events),
        timeout=120,
    )
    assert {c: d["score"] for c, d in got.items()} == {c: d["score"] for c, d in expected.items()}
    # The password travelled in the environment only: the worker never logs it.
    assert USERS["moisson"] not in (tmp_path / "worker.log").read_text(errors="replace")
    assert "moisson-dev-secret" not in repr(settings) and "moisson-dev-secret" not in str(
        settings.model_dump()
    )
    assert settings_env(settings)["KAFKA_SASL_PASSWORD"] == USERS["moisson"]


def test_a_wrong_password_is_refused(sasl_kafka, settings):
    with pytest.raises(KafkaError):
        ensure_topics(login(settings, sasl_kafka, "not-the-password"))
