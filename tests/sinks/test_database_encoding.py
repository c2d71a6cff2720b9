"""A database that is not UTF-8 is refused with one clear error, not a TypeError.

Found by the compose test: initdb in the C locale makes SQL_ASCII databases, where
psycopg returns bytes and SQLAlchemy's first connect raised a TypeError in the sink, which
then restarted forever.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sinks.postgres.tables import UnsupportedDatabase
from sinks.postgres.writer import PostgresSink
from tests.moisson.cli.test_config_errors import one_clear_error, run

pytestmark = pytest.mark.integration


@pytest.fixture
def ascii_url(database_url: str) -> Iterator[str]:
    """A fresh SQL_ASCII database beside the test database; dropped afterwards."""
    name = f"ascii_{uuid.uuid4().hex[:8]}"
    url = make_url(database_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
                "TEMPLATE template0"
            )
        )
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def test_the_sink_refuses_a_sql_ascii_database_and_says_how_to_fix_it(ascii_url: str):
    with pytest.raises(UnsupportedDatabase) as refused:
        PostgresSink(ascii_url)
    assert "encoded SQL_ASCII" in str(refused.value)
    assert "ENCODING 'UTF8'" in refused.value.fix


def test_the_sink_command_fails_with_one_clear_error(ascii_url: str, kafka_bootstrap: str):
    res = run("sink", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, DATABASE_URL=ascii_url)
    one_clear_error(res, "encoded SQL_ASCII", "CREATE DATABASE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_dashboard_command_fails_with_one_clear_error(ascii_url: str, kafka_bootstrap: str):
    res = run(
        "dashboard",
        "--port",
        str(free_port()),
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=ascii_url,
    )
    one_clear_error(res, "encoded SQL_ASCII", "CREATE DATABASE")
