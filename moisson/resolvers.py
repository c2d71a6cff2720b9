"""The schema registry client and the schema-id resolvers of the configured settings
(the settings adapter of :mod:`schemas.registry_client`, which reads none)."""

from __future__ import annotations

from moisson.settings import Settings
from schemas.codec import IdResolver
from schemas.registry_client import CachedResolver, SchemaRegistryClient


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


def planner_resolver(settings: Settings) -> CachedResolver | None:
    """What resolves schema ids for the processor's planner, on its event loop: the cache
    alone, filled off the loop within ``REGISTRY_LOOKUP_TIMEOUT_S`` (None without
    ``REGISTRY_URL``)."""
    client = registry_client(settings)
    if client is None:
        return None
    timeout = settings.registry.lookup_timeout_s
    client.timeout = timeout  # one request never outlasts the wait for it
    return CachedResolver(client, timeout_s=timeout)
