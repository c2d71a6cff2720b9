"""Start-up checks: a bad address or a malformed file fails in seconds with one clear line.

kafka-python takes ~25 s of backoff to give up on a wrong bootstrap address, and a faust
worker never gives up; a plain TCP connect tells the same thing at once.
"""

from __future__ import annotations

import socket

from pydantic import ValidationError

from moisson.errors import MoissonError
from moisson.settings import KafkaSettings

KAFKA_FIX = "start it (moisson stack up) or set KAFKA_BOOTSTRAP_SERVERS / --kafka"


class PreflightError(MoissonError):
    """A configuration problem, said in one line, with the fix."""


def kafka(settings: KafkaSettings, timeout: float = 5.0) -> None:
    """Raise unless at least one bootstrap server accepts a TCP connection."""
    problems = []
    for server in settings.bootstrap_servers.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise PreflightError(
                f"KAFKA_BOOTSTRAP_SERVERS entry {server.strip()!r} is not host:port",
                "give host:port[,host:port], e.g. 127.0.0.1:9092",
            )
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except socket.gaierror:
            problems.append(f"{server.strip()}: unknown host")
        except OSError as exc:
            problems.append(f"{server.strip()}: {exc.strerror or exc}")
    raise PreflightError(
        "cannot reach Kafka (" + "; ".join(problems) + ")",
        KAFKA_FIX,
    )


def explain(exc: ValidationError) -> str:
    """A settings error as env var names and messages; never the (possibly secret) input."""
    parts = []
    for err in exc.errors():
        name = "_".join(str(p) for p in err["loc"]).upper()
        parts.append(f"{name}: {err['msg']}")
    return "; ".join(parts)
