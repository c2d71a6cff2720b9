"""Apicurio Registry from Maven Central: a Confluent-compatible schema registry, no Docker.

Apicurio publishes its runnable Quarkus app as ``io.apicurio:apicurio-registry-app``
(``tar.gz``, classifier ``all``, ~160 MB); Maven unpacks it once into the cache and
``java -jar quarkus-run.jar`` serves it with in-memory storage. The
Confluent-compatible API lives under ``/apis/ccompat/v7``.
"""

from __future__ import annotations

import glob
import logging
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from moisson.stack.base import (
    Service,
    ServiceError,
    _tail,
    fetch_with_maven,
    free_port,
    java_major_of,
)

log = logging.getLogger(__name__)

APICURIO_VERSION = "3.3.3"
#: Apicurio Registry 3.3 is compiled for Java 21 (class file version 65).
JAVA_MIN = 21
CCOMPAT = "/apis/ccompat/v7"


def find_java(minimum: int = JAVA_MIN) -> tuple[str, int]:
    """A ``java`` of at least ``minimum``: the one on PATH, else the newest under /usr/lib/jvm."""
    seen: list[str] = []
    candidates = [shutil.which("java") or ""]
    candidates += sorted(glob.glob("/usr/lib/jvm/*/bin/java"), reverse=True)
    best: tuple[str, int] | None = None
    for java in dict.fromkeys(c for c in candidates if c):
        major = java_major_of(java)
        seen.append(f"{java} ({major or 'unusable'})")
        if major is not None and major >= minimum and (best is None or major > best[1]):
            best = (java, major)
    if best is None:
        raise ServiceError(
            f"Apicurio Registry {APICURIO_VERSION} needs Java {minimum}+; found: "
            f"{', '.join(seen) or 'no java at all'}. Install a JDK {minimum}+ "
            "(e.g. Temurin) or point REGISTRY_URL at a running registry."
        )
    return best


def unpack(version: str, cache_dir: Path, quiet: bool = True) -> Path:
    """The directory holding Apicurio ``version``'s ``quarkus-run.jar``, fetched once."""
    home = cache_dir / f"apicurio-registry-{version}"
    marker = home / ".complete"
    if marker.exists():
        return home
    if shutil.which("mvn") is None:
        raise ServiceError("no mvn on PATH to fetch Apicurio Registry from Maven Central")
    if home.exists():
        shutil.rmtree(home)  # a half-unpacked directory from a failed fetch
    home.mkdir(parents=True)
    argv = [
        "mvn",
        "-B",
        *(["-q"] if quiet else []),
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:unpack",
        f"-Dartifact=io.apicurio:apicurio-registry-app:{version}:tar.gz:all",
        f"-DoutputDirectory={home}",
    ]
    log.info("fetching Apicurio Registry %s (~160 MB) from Maven Central into %s", version, home)
    took = fetch_with_maven(
        argv,
        f"Apicurio Registry {version}",
        home,
        lambda: (home / "quarkus-run.jar").exists(),
        cwd=home,
    )
    marker.write_text(f"fetched in {took:.1f}s\n")
    return home


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


class ApicurioRegistry(Service):
    """A single Apicurio Registry with in-memory storage, on free loopback ports."""

    name = "registry"

    def __init__(self, workdir: Path, cache_dir: Path, version: str = APICURIO_VERSION) -> None:
        self.workdir = workdir
        self.cache_dir = cache_dir
        self.version = version
        self.port = 0
        self.fetch_seconds = 0.0
        self.start_seconds = 0.0

    @property
    def url(self) -> str:
        """The Confluent-compatible API root, as ``REGISTRY_URL`` wants it."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT}"

    def env(self) -> dict[str, str]:
        return {"REGISTRY_URL": self.url}

    def describe(self) -> str:
        return f"Apicurio Registry {self.version} (from Maven Central) at {self.url}"

    def start(self, timeout: float = 180.0) -> str:
        java, _ = find_java()
        fetch_started = time.monotonic()
        home = unpack(self.version, self.cache_dir)
        self.fetch_seconds = time.monotonic() - fetch_started
        self.port = free_port()
        tmp = self.workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        logfile = self.workdir / "apicurio.log"
        argv = [
            java,
            "-Xmx384m",
            "-XX:+ExitOnOutOfMemoryError",
            f"-Djava.io.tmpdir={tmp}",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.port}",
            "-Dquarkus.management.host=127.0.0.1",
            f"-Dquarkus.management.port={free_port()}",
            "-jar",
            str(home / "quarkus-run.jar"),
        ]
        started = time.monotonic()
        proc = self.spawn(argv, logfile, cwd=self.workdir)
        ready = f"{self.url}/subjects"
        deadline = started + timeout
        while time.monotonic() < deadline:
            if _status(ready) == 200:
                self.start_seconds = time.monotonic() - started
                return self.url
            if proc.poll() is not None:
                self.pid = None
                raise ServiceError(
                    f"{self.describe()} exited with code {proc.returncode} before it was ready"
                    f"{_tail(logfile)}"
                )
            time.sleep(0.25)
        self.stop()
        raise ServiceError(
            f"{self.describe()} did not answer GET {ready} with 200 within {timeout:.0f}s"
            f"{_tail(logfile)}"
        )
