"""A fake Confluent-compatible schema registry on 127.0.0.1 (the standard library's
http.server): it answers ``GET /schemas/ids/{id}`` from a dict, counts the lookups, and
can fail (an HTTP status) or hang (a delay) on demand."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from schemas.codec import Schema

ID_PATH = re.compile(r"^/schemas/ids/(\d+)$")
NOT_FOUND = {"error_code": 40403, "message": "Schema not found"}


class FakeRegistry:
    """``answers`` maps an id to its JSON answer (a dict) or to raw bytes; any other id
    is Confluent's 404 (error code 40403). ``status`` answers every request with that
    HTTP status instead; ``delay_s`` holds each answer back."""

    def __init__(self) -> None:
        self.answers: dict[int, Any] = {}
        self.status: int | None = None
        self.delay_s = 0.0
        self.lookups: Counter[int] = Counter()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, schema_id: int, schema: Schema | str) -> None:
        """Serve ``schema`` (ours, or any JSON text) as ``schema_id``, as Apicurio does."""
        text = schema if isinstance(schema, str) else schema.text
        self.answers[schema_id] = {"schema": text}

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                match = ID_PATH.match(self.path.split("/apis/ccompat/v7", 1)[-1])
                if match:
                    fake.lookups[int(match[1])] += 1
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fake.status is not None:
                    self.reply(fake.status, b"")
                elif not match:
                    self.reply(404, b"")  # a wrong path: Apicurio's empty 404
                elif int(match[1]) in fake.answers:
                    answer = fake.answers[int(match[1])]
                    body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                    self.reply(200, body)
                else:
                    self.reply(404, json.dumps(NOT_FOUND).encode())

            def reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.block_on_close = False  # a hanging answer must not hold the test's end
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def fake_registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
