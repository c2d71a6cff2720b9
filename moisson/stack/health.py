"""Health probes of the services moisson needs (what ``moisson health`` and compose run)
and the topics moisson owns."""

from __future__ import annotations

from moisson.settings import Settings


def wanted_topics(s: Settings) -> list[str]:
    """moisson's own topics (faust creates its internal ones itself)."""
    t = s.topics
    return [*t.sensors, t.doubles, t.sanctions, t.dlq]


def kafka_ok(s: Settings, _check: str, timeout: float) -> str:
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    admin = KafkaAdminClient(
        **s.kafka.client_kwargs(), request_timeout_ms=ms, bootstrap_timeout_ms=ms
    )
    try:
        missing = sorted(set(wanted_topics(s)) - set(admin.list_topics()))
    finally:
        admin.close()
    if missing:
        raise RuntimeError(f"missing topics {', '.join(missing)} (run `moisson topics`)")
    return f"{s.kafka.bootstrap_servers} has moisson's {len(wanted_topics(s))} topics"


def database_ok(s: Settings, _check: str, timeout: float) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(s.database.sqlalchemy_url())
    if url.drivername == "postgresql":  # psycopg 3, as the sink uses
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, connect_args={"connect_timeout": max(1, round(timeout))})
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return f"PostgreSQL {version} answers"


def http_ok(_s: Settings, url: str, timeout: float) -> str:
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as resp:  # raises on 4xx/5xx
        return f"HTTP {resp.status}"
