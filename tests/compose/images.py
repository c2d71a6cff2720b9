"""The images the compose test builds before it runs the stack (no registry is reachable).

- ``moisson-standin/debian:bookworm``: debootstrap's minbase, imported (cached as a tar).
- ``python:3.11-slim-bookworm``: the shipped Dockerfile's base, as a local stand-in.
- ``moisson-standin/{kafka,registry,postgres,prometheus}``: the third-party services
  (tests/compose/standins.yml puts them in place of the official images).

Each is built from ``standins/<name>/`` plus what the harness copies in: the host's JDK,
Kafka's jars and Apicurio's app from Maven Central, the host's extra CA certificates.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from moisson.stack.apicurio import APICURIO_VERSION, find_java, unpack
from moisson.stack.base import fetch_with_maven
from tests.compose.engine import DOCKER, EngineError, run
from tests.compose.project import BASE, HERE

STANDINS = HERE / "standins"
DEBIAN = "moisson-standin/debian:bookworm"
PYTHON = "python:3.11-slim-bookworm"
#: Stand-in images in build order (each FROM the one before it, or os).
ORDER = ["os", "java", "kafka", "registry", "postgres", "prometheus"]
LOCAL_CA = Path("/usr/local/share/ca-certificates")


def shipped_kafka_version() -> str:
    """The Apache Kafka release docker-compose.yml runs (apache/kafka:X.Y.Z)."""
    found = re.search(r"image:\s*apache/kafka:(\S+)", BASE.read_text())
    assert found, "docker-compose.yml names no apache/kafka image"
    return found.group(1)


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a tree by hard links where the filesystem allows (a JDK is 300 MB)."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, symlinks=True)


def exists(image: str, env: dict[str, str]) -> bool:
    res = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, env=env)
    return res.returncode == 0


def python_base(env: dict[str, str]) -> str | None:
    """What python:3.11-slim-bookworm is on this engine: "the official image" (which sets
    PYTHON_VERSION, as every docker-library python image does), "stand-in", or None."""
    res = subprocess.run(
        [DOCKER, "image", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}",
         PYTHON],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if res.returncode != 0:
        return None
    official = any(line.startswith("PYTHON_VERSION=") for line in res.stdout.splitlines())
    return "the official image" if official else "stand-in"


def debian_tar(cache: Path) -> Path:
    """debootstrap's bookworm minbase as a tar, made once (as root) and cached."""
    tar = cache / "debian-bookworm-minbase.tar"
    if tar.exists():
        return tar
    if shutil.which("debootstrap") is None:
        raise EngineError("no debootstrap: `make compose-test` installs it (apt)")
    root = cache / "debian-bookworm-rootfs"
    shutil.rmtree(root, ignore_errors=True)
    run(["debootstrap", "--variant=minbase", "bookworm", str(root)], timeout=900)
    shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    run(["tar", "-C", str(root), "-cf", str(tar.with_suffix(".partial")), "."])
    tar.with_suffix(".partial").rename(tar)
    shutil.rmtree(root)
    return tar


def debian_base(cache: Path, env: dict[str, str]) -> None:
    """moisson-standin/debian:bookworm, imported from debian_tar."""
    if exists(DEBIAN, env):
        return
    with debian_tar(cache).open("rb") as f:
        res = subprocess.run([DOCKER, "import", "-", DEBIAN], stdin=f, capture_output=True, env=env)
    if res.returncode != 0:
        raise EngineError(f"docker import failed: {res.stderr.decode()[-2000:]}")


def kafka_libs(cache: Path, version: str) -> Path:
    """Kafka ``version``'s jars plus kafka-tools (the health check's class), fetched once."""
    lib = cache / f"standin-kafka-{version}" / "lib"
    marker = lib.parent / ".complete"
    if not marker.exists():
        shutil.rmtree(lib, ignore_errors=True)
        lib.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            "mvn", "-B", "-q", "-f", str(STANDINS / "kafka" / "classpath.pom.xml"),
            f"-Dkafka.version={version}", "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={lib}",
        ]  # fmt: skip
        fetch_with_maven(argv, f"Apache Kafka {version}", lib, lambda: any(lib.glob("kafka_*")))
        marker.write_text("fetched\n")
    return lib


def _context(workdir: Path, name: str, extra: dict[str, Path]) -> Path:
    """standins/<name>/ plus ``extra`` (name in the context -> source tree)."""
    ctx = workdir / "contexts" / name
    shutil.rmtree(ctx, ignore_errors=True)
    shutil.copytree(STANDINS / name, ctx)
    for inside, src in extra.items():
        _link_tree(src, ctx / inside)
    return ctx


def build_all(workdir: Path, cache: Path, env: dict[str, str]) -> dict[str, float]:
    """Build every stand-in and the Python base; seconds per image, for the report."""
    took: dict[str, float] = {}
    started = time.monotonic()
    debian_base(cache, env)
    took["debian"] = time.monotonic() - started
    java_home = Path(find_java(21)[0]).resolve().parents[1]
    certs = workdir / "certs"
    certs.mkdir(exist_ok=True)
    for crt in LOCAL_CA.glob("*.crt") if LOCAL_CA.is_dir() else []:
        shutil.copy2(crt, certs / crt.name)
    (certs / ".keep").touch()
    extras: dict[str, dict[str, Path]] = {
        "java": {"jdk": java_home},
        "kafka": {"libs": kafka_libs(cache, shipped_kafka_version())},
        "registry": {"app": unpack(APICURIO_VERSION, cache)},
        "python": {"certs": certs},
    }
    for name in [*ORDER, "python"]:
        tag = PYTHON if name == "python" else f"moisson-standin/{name}"
        if tag == PYTHON and python_base(env) == "the official image":
            continue  # the official image, pulled on this engine: never overwritten
        started = time.monotonic()
        ctx = _context(workdir, name, extras.get(name, {}))
        run([DOCKER, "build", "-q", "-t", tag, str(ctx)], env=env, timeout=1200)
        shutil.rmtree(ctx)
        took[name] = time.monotonic() - started
    return took
