"""A Confluent-compatible schema registry client: register, look up by id, frame.

Registry mode (``REGISTRY_URL`` set): producers register each ``.avsc`` under the
``<topic>-value`` subject and write the Confluent wire format; consumers pass
:meth:`SchemaRegistryClient.resolve` as the ``resolver`` of :func:`schemas.codec.decode`,
or, on an event loop, a :class:`CachedResolver` (cache only, filled off the loop by
:meth:`CachedResolver.prefetch` under a timeout).

Only moisson's own schemas are trusted: an id whose schema is none of ours is refused
(``unknown-schema``) and never decoded. An id the registry does not know is
``unknown-schema-id``; a registry that cannot answer is ``schema-registry-unavailable``,
which is not the message's fault (the processor waits and retries). Verdicts are cached,
unknown ids too, in bounded caches.

This module reads no settings: url, credentials and timeouts are plain arguments
(``moisson.resolvers`` builds them from the settings).

Written on the standard library's ``urllib`` on purpose: moisson needs two calls
(``POST /subjects/{s}/versions`` and ``GET /schemas/ids/{id}``). The Python clients
that exist either come with confluent-kafka (librdkafka, which moisson avoids) or
bring httpx, jsonschema and their own Avro schema model around fastavro, for what
is here two HTTP calls with the exact error messages we want.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from schemas.codec import CodecError, Reason, Schema, encode_confluent, ours, schema_id_of

log = logging.getLogger(__name__)
V = TypeVar("V")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
#: The most of a registry's answer read; ours are a few KiB, a longer schema is none of ours.
MAX_ANSWER_BYTES = 1 << 20
#: Verdicts kept per kind (ids of our schemas; ids unknown or foreign), oldest dropped first.
CACHED_IDS = 10_000
#: Confluent's error code for "schema not found": a 404 without it is a wrong URL.
SCHEMA_NOT_FOUND = 40403


class RegistryError(RuntimeError):
    """The registry could not be reached or refused a request; the message says which."""


class AnswerTooLarge(RegistryError):
    """The registry answered with more than :data:`MAX_ANSWER_BYTES`."""


class Bounded(dict[int, V], Generic[V]):
    """A dict of at most ``size`` entries; adding one more drops the oldest."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = max(1, size)

    def __setitem__(self, key: int, value: V) -> None:
        if key not in self and len(self) >= self.size:
            del self[next(iter(self))]
        super().__setitem__(key, value)


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
        cached_ids: int = CACHED_IDS,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self._auth: str | None = None
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._auth = f"Basic {token}"
        self._ids: dict[tuple[str, bytes], int] = {}
        self._schemas: Bounded[Schema] = Bounded(cached_ids)  # id -> one of our schemas
        #: id -> (reason, detail): ids the registry does not know, or whose schema is foreign
        self._refused: Bounded[tuple[Reason, str]] = Bounded(cached_ids)
        self._lock = threading.Lock()

    def _request(
        self, method: str, path: str, body: Any = None, attempts: int | None = None
    ) -> tuple[int, Any]:
        """``(status, parsed JSON)``; 4xx answers are returned, not raised.

        Connection failures, 5xx and unparsable answers are tried ``attempts`` times (the
        client's by default), then raise :class:`RegistryError`; an answer over
        :data:`MAX_ANSWER_BYTES` raises :class:`AnswerTooLarge` at once.
        """
        attempts = max(1, attempts or self.attempts)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": CONTENT_TYPE + ", application/json"}
        if data is not None:
            headers["Content-Type"] = CONTENT_TYPE
        if self._auth:
            headers["Authorization"] = self._auth
        url = self.url + path
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read(MAX_ANSWER_BYTES + 1)
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise AnswerTooLarge(f"{method} {path}: over {MAX_ANSWER_BYTES} bytes")
                    return resp.status, json.loads(raw or b"null")
            except urllib.error.HTTPError as exc:
                text = exc.read(MAX_ANSWER_BYTES).decode("utf-8", "replace")
                if exc.code < 500:
                    try:
                        return exc.code, json.loads(text)
                    except (ValueError, RecursionError):
                        return exc.code, {"message": text[:300]}
                problem = f"HTTP {exc.code}: {text[:300]}"
            except (urllib.error.URLError, OSError, ValueError, RecursionError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"{type(exc).__name__}: {reason}"
        raise RegistryError(
            f"schema registry {self.url} unreachable for {method} {path}"
            f" after {attempts} attempt{'s' if attempts > 1 else ''} ({problem});"
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
        self.remember(schema_id, schema)
        log.info("registered %s under %s as id %d", schema.name, subject, schema_id)
        return schema_id

    def remember(self, schema_id: int, schema: Schema) -> None:
        """Cache ``schema`` (one of ours, e.g. just registered) as ``schema_id``."""
        with self._lock:
            if schema_id not in self._schemas:
                self._schemas[schema_id] = schema

    def subjects(self) -> list[str]:
        status, answer = self._request("GET", "/subjects")
        if status != 200 or not isinstance(answer, list):
            raise RegistryError(f"schema registry {self.url}: GET /subjects gave HTTP {status}")
        return [str(s) for s in answer]

    def cached(self, schema_id: int) -> Schema | None:
        """The verdict on ``schema_id`` from the cache alone, never the network: our
        schema, or None when the registry does not know the id.

        Raises :class:`CodecError`: ``UNKNOWN_SCHEMA`` for an id whose schema is none of
        ours, ``REGISTRY_UNAVAILABLE`` for an id not looked up yet (or dropped from the
        cache): the registry has not answered for it.
        """
        schema = self._schemas.get(schema_id)
        if schema is not None:
            return schema
        refused = self._refused.get(schema_id)
        if refused is None:
            raise CodecError(
                Reason.REGISTRY_UNAVAILABLE,
                f"schema id {schema_id} not looked up yet: the registry {self.url} has not"
                " answered for it",
            )
        reason, detail = refused
        if reason is Reason.UNKNOWN_SCHEMA_ID:
            return None
        raise CodecError(reason, detail)

    def missing(self, ids: Iterable[int]) -> list[int]:
        """The ids of ``ids`` with no cached verdict, in order, once each."""
        return [i for i in dict.fromkeys(ids) if i not in self._schemas and i not in self._refused]

    def fetch(self, ids: Iterable[int], attempts: int = 1) -> bool:
        """Look up each id of ``ids`` that has no verdict yet and cache what the registry
        says. Blocking: call it off the event loop. False when the registry could not
        answer (it stops at the first such id; the others stay uncached).
        """
        for schema_id in self.missing(ids):
            try:
                self._lookup(schema_id, attempts)
            except RegistryError as exc:
                log.warning("schema id %d not resolved: %s", schema_id, exc)
                return False
        return True

    def resolve(self, schema_id: int) -> Schema | None:
        """The writer schema of ``schema_id`` (one of ours), looked up if not cached (with
        retries, blocking: for one-off readers); None when the registry has no such id.

        Raises :class:`CodecError`: ``UNKNOWN_SCHEMA`` for a schema that is none of ours,
        ``REGISTRY_UNAVAILABLE`` when the registry cannot answer, so
        :func:`schemas.codec.decode` reports it like any bad message.
        """
        if self.missing([schema_id]):
            try:
                self._lookup(schema_id, self.attempts)
            except RegistryError as exc:
                raise CodecError(Reason.REGISTRY_UNAVAILABLE, str(exc)) from exc
        return self.cached(schema_id)

    def _lookup(self, schema_id: int, attempts: int) -> None:
        """Ask the registry for ``schema_id`` and cache its verdict; RegistryError when
        the answer says nothing about the id (unreachable, 5xx, auth, a wrong URL)."""
        path = f"/schemas/ids/{schema_id}"
        try:
            status, answer = self._request("GET", path, attempts=attempts)
        except AnswerTooLarge as exc:
            self._refuse(schema_id, Reason.UNKNOWN_SCHEMA, f"schema id {schema_id}: {exc}")
            return
        code = answer.get("error_code") if isinstance(answer, dict) else None
        if status == 404 and code == SCHEMA_NOT_FOUND:
            self._refuse(schema_id, Reason.UNKNOWN_SCHEMA_ID, f"no schema id {schema_id}")
            return
        if status != 200 or not isinstance(answer, dict):
            raise RegistryError(
                f"schema registry {self.url}: GET {path} gave HTTP {status}"
                f" {str(answer)[:200]}; check REGISTRY_URL and its credentials"
            )
        kind = answer.get("schemaType", "AVRO")
        try:
            if kind != "AVRO":
                raise CodecError(Reason.UNKNOWN_SCHEMA, f"a {str(kind)[:40]} schema, not Avro")
            schema = ours(answer.get("schema"))
        except CodecError as exc:
            self._refuse(schema_id, exc.reason, f"schema id {schema_id}: {exc.detail}")
            return
        self.remember(schema_id, schema)

    def _refuse(self, schema_id: int, reason: Reason, detail: str) -> None:
        with self._lock:
            self._refused[schema_id] = (reason, detail)
        log.debug("schema id %d refused: %s", schema_id, detail)


class CachedResolver:
    """The resolver of a planner on an event loop: it answers from the client's cache
    alone, so it never blocks; an id not looked up yet is ``REGISTRY_UNAVAILABLE``.

    Before planning, :meth:`prefetch` looks the batch's new ids up in a thread, waiting
    at most ``timeout_s``. After a lookup that failed or overran, batches do not wait
    for the registry again for ``retry_after_s``: their new ids stay unavailable (the
    processor retries them) while the lookup in flight goes on filling the cache.
    """

    def __init__(
        self, client: SchemaRegistryClient, timeout_s: float = 3.0, retry_after_s: float = 1.0
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._inflight: asyncio.Future[bool] | None = None  # at most one lookup thread
        self._quiet_until = 0.0

    def __call__(self, schema_id: int) -> Schema | None:
        return self.client.cached(schema_id)

    async def prefetch(self, values: Iterable[bytes | None]) -> None:
        """Look up, off the event loop, the schema ids of the Confluent-framed ``values``
        that have no verdict yet; returns within ``timeout_s``, whatever the registry does."""
        ids = [i for v in values if v is not None and (i := schema_id_of(v)) is not None]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        ours = False
        while missing := self.client.missing(ids):
            if ours or time.monotonic() < self._quiet_until:
                return
            fut = self._inflight
            if fut is None or fut.done() or fut.get_loop() is not loop:
                fut = self._inflight = loop.run_in_executor(None, self.client.fetch, missing)
                ours = True
            try:
                answered = await asyncio.wait_for(
                    asyncio.shield(fut), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                log.warning(
                    "schema registry %s: no answer within %.1fs for %d schema ids; their"
                    " messages wait",
                    self.client.url,
                    self.timeout_s,
                    len(missing),
                )
                answered = False
            except Exception:
                log.exception("schema registry %s: lookup failed", self.client.url)
                answered = False
            if not answered:
                self._quiet_until = time.monotonic() + self.retry_after_s
                return


class RegistryFramer:
    """Encodes records in the Confluent wire format for their topics' subjects."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self.client = client

    def encode(self, topic: str, schema: Schema, record: Mapping[str, Any]) -> bytes:
        return encode_confluent(schema, self.client.register(subject_for(topic), schema), record)
