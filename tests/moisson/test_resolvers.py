"""The registry adapter: clients and resolvers from the settings."""

from __future__ import annotations

import pytest

from moisson.resolvers import id_resolver, planner_resolver, registry_client
from moisson.settings import Settings
from schemas.registry_client import CachedResolver


def test_without_a_registry_url_there_is_no_client(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("REGISTRY_URL", raising=False)
    s = Settings()
    assert registry_client(s) is None and id_resolver(s) is None and planner_resolver(s) is None


def test_the_planner_resolver_waits_at_most_the_lookup_timeout(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REGISTRY_URL", "http://127.0.0.1:9/apis/ccompat/v7/")
    monkeypatch.setenv("REGISTRY_LOOKUP_TIMEOUT_S", "0.7")
    resolver = planner_resolver(Settings())
    assert isinstance(resolver, CachedResolver)
    assert resolver.timeout_s == 0.7
    assert resolver.client.timeout == 0.7, "one request never outlasts the wait for it"
    assert resolver.client.url == "http://127.0.0.1:9/apis/ccompat/v7"


def test_the_lookup_timeout_must_be_positive(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REGISTRY_LOOKUP_TIMEOUT_S", "0")
    with pytest.raises(ValueError, match="lookup_timeout_s"):
        Settings()
