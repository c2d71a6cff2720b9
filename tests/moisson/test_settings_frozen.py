"""The settings are frozen: a variant is a copy (``Settings.replace``), never a mutation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from moisson.settings import Settings


def test_no_section_and_no_field_can_be_assigned():
    s = Settings()
    with pytest.raises(ValidationError):
        s.kafka.partitions = 8  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.kafka = s.kafka  # type: ignore[misc]
    for name in type(s).model_fields:
        assert type(getattr(s, name)).model_config.get("frozen"), name


def test_replace_copies_the_sections_it_names_and_shares_the_rest():
    s = Settings()
    t = s.replace(kafka={"partitions": 8}, topics={"prefix": "t."})
    assert (t.kafka.partitions, t.topics.prefix) == (8, "t.")
    assert (s.kafka.partitions, s.topics.prefix) == (4, "")
    assert t.database is s.database and t.kafka is not s.kafka


def test_a_field_given_to_replace_counts_as_configured(monkeypatch):
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "DATABASE_HOST"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert not s.kafka_given and not s.database_given
    t = s.replace(
        kafka={"bootstrap_servers": "h:1"}, database={"url": SecretStr("postgresql://u@h/d")}
    )
    assert t.kafka_given and t.database_given
    assert t.replace(processor={"data_dir": Path("x")}).kafka_given


def test_replace_refuses_an_unknown_section_or_field():
    with pytest.raises(TypeError, match="no section 'kafak'"):
        Settings().replace(kafak={"partitions": 8})
    with pytest.raises(TypeError, match="no field partition"):
        Settings().replace(kafka={"partition": 8})
