"""The schema registry client of the configured settings (the settings adapter of
:mod:`schemas.registry`, which reads none)."""

from __future__ import annotations

from moisson.settings import Settings
from schemas.codec import IdResolver
from schemas.registry import SchemaRegistryClient


def registry_client(settings: Settings) -> SchemaRegistryClient | None:
    """The client for the configured registry, None when no ``REGISTRY_URL`` is set."""
    reg = settings.registry
    if not reg.url:
        return None
    password = reg.password.get_secret_value() if reg.password else None
    return SchemaRegistryClient(reg.url, reg.username, password)


def id_resolver(settings: Settings) -> IdResolver | None:
    """What resolves Confluent schema ids in registry mode (None without ``REGISTRY_URL``)."""
    client = registry_client(settings)
    return client.resolve if client is not None else None
