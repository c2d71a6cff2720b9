"""Settings come from the environment; flags and children see the same values."""

from __future__ import annotations

from moisson.settings import Settings, settings_env


def test_documented_env_names(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    monkeypatch.setenv("TOPICS_PREFIX", "x.")
    monkeypatch.setenv("KAFKA_PARTITIONS", "6")
    s = Settings()
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert s.kafka.partitions == 6
    assert s.database.sqlalchemy_url() == "postgresql://u:p@h/db"
    assert s.topics.sensors[0] == "x.sensors.metro"
    assert s.kafka_given and s.database_given


def test_defaults_and_secret(monkeypatch):
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "DATABASE_HOST"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert not s.kafka_given and not s.database_given
    assert "moisson-dev-only" not in repr(s)
    assert s.database.sqlalchemy_url().endswith("@127.0.0.1:5432/moisson")


def test_settings_survive_the_trip_to_a_child(monkeypatch):
    s = Settings()
    s.topics.prefix = "child."
    s.processor.app_id = "kid"
    for k, v in settings_env(s).items():
        monkeypatch.setenv(k, v)
    back = Settings()
    assert back.topics.prefix == "child."
    assert back.processor.app_id == "kid"
    assert back.database.password.get_secret_value() == s.database.password.get_secret_value()
