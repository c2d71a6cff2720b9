"""Settings come from the environment; flags and children see the same values."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from moisson import preflight
from moisson.settings import DatabaseSettings, Settings, check_database_url, settings_env


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
    s = Settings().replace(topics={"prefix": "child."}, processor={"app_id": "kid"})
    for k, v in settings_env(s).items():
        monkeypatch.setenv(k, v)
    back = Settings()
    assert back.topics.prefix == "child."
    assert back.processor.app_id == "kid"
    assert back.database.password.get_secret_value() == s.database.password.get_secret_value()


# Each holds every character a URL gives a meaning to; the tails are what a wrong split
# would show as the host, port or database name.
PASSWORDS = ["hunter@2tail", "a:b:c", "a/b/c", "100%", "%40", "x#y", "p@ss:w/o%rd#z?q=1&[/]"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_with_url_characters_reaches_the_driver_whole(password):
    db = DatabaseSettings(user="ops@moisson", password=SecretStr(password), port=6543)
    url = make_url(db.sqlalchemy_url())
    assert url.password == password
    assert (url.username, url.host, url.port, url.database) == (
        "ops@moisson",
        "127.0.0.1",
        6543,
        "moisson",
    )


def test_a_socket_directory_is_libpqs_host_parameter():
    url = make_url(DatabaseSettings(host="/run/pg", password=SecretStr("a@b")).sqlalchemy_url())
    assert url.host is None
    assert url.query == {"host": "/run/pg"}
    assert url.password == "a@b"


@pytest.mark.parametrize(
    ("url", "pieces"),
    [  # what a wrong split made the host, the port or the database name
        ("postgresql://moisson:hunter@2tail@127.0.0.1:5432/moisson", ["hunter", "2tail"]),
        ("postgresql://moisson:zq@xk:wv/ju%rd#yz@127.0.0.1/moisson", ["zq", "xk", "wv", "ju"]),
        ("postgresql://moisson:zq@xk/wv@ju@127.0.0.1/moisson", ["zq", "xk", "wv", "ju"]),
    ],
)
def test_an_unescaped_password_is_refused_without_a_trace_of_it(url, pieces, monkeypatch):
    with pytest.raises(ValueError) as err:
        check_database_url(url)
    said = str(err.value)
    assert "percent-encode" in said
    assert not [p for p in pieces if p in said], said
    # Through the environment: pydantic's message, as the CLI shows it.
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ValidationError) as bad:
        Settings()
    shown = preflight.explain(bad.value)
    assert "DATABASE_URL" in shown and "percent-encode" in shown
    assert not [p for p in pieces if p in shown], shown


def test_a_percent_encoded_url_is_accepted():
    url = "postgresql://moisson:p%40ss%3Aw%2Fo%25rd%23z@db.example:5432/moisson"
    check_database_url(url)
    assert make_url(url).password == "p@ss:w/o%rd#z"


def test_the_dead_letter_retention_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOPICS_DLQ_RETENTION_DAYS", "7.5")
    monkeypatch.setenv("TOPICS_DLQ_RETENTION_BYTES", str(64 * 1024 * 1024))
    configs = Settings().topics.names.dead_letters
    assert configs["retention.ms"] == str(int(7.5 * 24 * 3600 * 1000))
    assert configs["retention.bytes"] == str(64 * 1024 * 1024)
    monkeypatch.setenv("TOPICS_DLQ_RETENTION_BYTES", "1000")  # below a Kafka segment
    with pytest.raises(ValidationError):
        Settings()
