"""A Confluent-compatible schema registry client: register, look up by id, frame.

Registry mode (``REGISTRY_URL`` set): producers register each ``.avsc`` under the
``<topic>-value`` subject and write the Confluent wire format; consumers pass
:meth:`SchemaRegistryClient.resolve` as the ``resolver`` of :func:`schemas.codec.decode`.
This module reads no settings: url, credentials and timeouts are plain arguments
(``moisson.registry.registry_client`` builds one from the settings).

Written on the standard library's ``urllib`` on purpose: moisson needs two calls
(``POST /subjects/{s}/versions`` and ``GET /schemas/ids/{id}``). The Python clients
that exist either come with confluent-kafka (librdkafka, which moisson avoids) or
bring httpx, jsonschema and their own Avro schema model around fastavro, for what
is here ~100 lines with the exact error messages we want.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from schemas.codec import (
    CodecError,
    Reason,
    Schema,
    encode_confluent,
    registry,
    schema_from_json,
)

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    """The registry could not be reached or refused a request; the message says which."""


def subject_for(topic: str) -> str:
    """The Confluent TopicNameStrategy subject of a topic's values."""
    return f"{topic}-value"


class SchemaRegistryClient:
    """Registers schemas and resolves ids against one registry, caching both ways."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self._auth: str | None = None
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._auth = f"Basic {token}"
        self._ids: dict[tuple[str, bytes], int] = {}
        self._schemas: dict[int, Schema] = {}
        self._lock = threading.Lock()

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, parsed JSON)``; 4xx answers are returned, not raised.

        Connection failures and 5xx answers are retried ``attempts`` times, then raise
        :class:`RegistryError`.
        """
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": CONTENT_TYPE + ", application/json"}
        if data is not None:
            headers["Content-Type"] = CONTENT_TYPE
        if self._auth:
            headers["Authorization"] = self._auth
        url = self.url + path
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.status, json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                text = exc.read().decode("utf-8", "replace")
                if exc.code < 500:
                    try:
                        return exc.code, json.loads(text)
                    except ValueError:
                        return exc.code, {"message": text}
                problem = f"HTTP {exc.code}: {text[:300]}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"{type(exc).__name__}: {reason}"
        raise RegistryError(
            f"schema registry {self.url} unreachable for {method} {path}"
            f" after {self.attempts} attempts ({problem});"
            " check REGISTRY_URL, or unset it to use single-object framing"
        )

    def register(self, subject: str, schema: Schema) -> int:
        """The id of ``schema`` under ``subject``, registering it if needed (cached)."""
        key = (subject, schema.fingerprint)
        if key in self._ids:
            return self._ids[key]
        status, answer = self._request(
            "POST",
            f"/subjects/{urllib.parse.quote(subject, safe='')}/versions",
            {"schema": schema.text or schema.canonical, "schemaType": "AVRO"},
        )
        if status != 200 or not isinstance(answer, dict) or "id" not in answer:
            raise RegistryError(
                f"schema registry {self.url} refused {schema.name} under subject {subject!r}:"
                f" HTTP {status} {answer}"
            )
        schema_id = int(answer["id"])
        with self._lock:
            self._ids[key] = schema_id
            self._schemas.setdefault(schema_id, schema)
        log.info("registered %s under %s as id %d", schema.name, subject, schema_id)
        return schema_id

    def subjects(self) -> list[str]:
        status, answer = self._request("GET", "/subjects")
        if status != 200 or not isinstance(answer, list):
            raise RegistryError(f"schema registry {self.url}: GET /subjects gave HTTP {status}")
        return [str(s) for s in answer]

    def resolve(self, schema_id: int) -> Schema | None:
        """The writer schema of ``schema_id``: ours when its canonical form matches one of
        our ``.avsc`` files, else the registry's own; None when the registry has no such id.

        Raises :class:`CodecError` (``REGISTRY_UNAVAILABLE``) when the registry cannot
        answer, so :func:`schemas.codec.decode` reports it like any bad message.
        """
        if schema_id in self._schemas:
            return self._schemas[schema_id]
        try:
            status, answer = self._request("GET", f"/schemas/ids/{schema_id}")
        except RegistryError as exc:
            raise CodecError(Reason.REGISTRY_UNAVAILABLE, str(exc)) from exc
        if status == 404:
            return None
        if status != 200 or not isinstance(answer, dict) or "schema" not in answer:
            raise CodecError(
                Reason.REGISTRY_UNAVAILABLE, f"GET /schemas/ids/{schema_id}: HTTP {status} {answer}"
            )
        if answer.get("schemaType", "AVRO") != "AVRO":
            raise CodecError(
                Reason.UNKNOWN_SCHEMA_ID,
                f"schema id {schema_id} is a {answer['schemaType']} schema, not Avro",
            )
        try:
            theirs = schema_from_json(answer["schema"])
        except Exception as exc:
            raise CodecError(
                Reason.UNKNOWN_SCHEMA_ID, f"schema id {schema_id} does not parse as Avro: {exc}"
            ) from exc
        schema = registry.by_fingerprint.get(theirs.fingerprint, theirs)
        with self._lock:
            self._schemas[schema_id] = schema
        return schema


class RegistryFramer:
    """Encodes records in the Confluent wire format for their topics' subjects."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self.client = client

    def encode(self, topic: str, schema: Schema, record: Mapping[str, Any]) -> bytes:
        return encode_confluent(schema, self.client.register(subject_for(topic), schema), record)
