"""The compose test's report: which services ran as shipped, and what the run measured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.compose.project import HERE, ROOT

OVERRIDE = HERE / "standins.yml"
CLUSTER_OVERRIDE = HERE / "standins.cluster.yml"
#: How each stand-in differs from the official image (tests/compose/README.md says more).
STANDIN = {
    "kafka": "Apache Kafka 4.4.0's jars from Maven Central on the host's JDK, Debian base",
    "kafka-2": "as kafka",
    "kafka-3": "as kafka",
    "postgres": "Debian's PostgreSQL 15 (the image tag says 18.4)",
    "registry": "Apicurio Registry 3.3.3 from Maven Central (the image tag says 3.3.1)",
    "prometheus": "Debian's Prometheus 2.42 (the image tag says v3.14.0)",
}
NOT_RUN = {
    "kafka-ui": "published only as a container image and a GitHub release (neither "
    "reachable here, nor on Maven Central, PyPI or Debian)",
    "grafana": "published only as container images, its own apt repository and GitHub "
    "releases (neither reachable here); its provisioning is checked as files",
}
#: Env vars of the host's moisson commands that must come from the test, not the session.
_OURS = ("KAFKA_", "DATABASE_", "REGISTRY_", "TOPICS_", "PROCESSOR_", "SENSORS_", "VERIFY_")


def services(files: list[Path]) -> dict[str, str]:
    """Service -> "shipped", "stand-in: …" or "not run: …" for a stack of compose files."""
    names: set[str] = set()
    for f in files:
        if f.parent == ROOT:
            names |= set(yaml.safe_load(f.read_text())["services"])
    out = {}
    for name in sorted(names):
        if name in NOT_RUN:
            out[name] = f"not run: {NOT_RUN[name]}"
        elif name in STANDIN:
            out[name] = f"stand-in: {STANDIN[name]}"
        else:
            out[name] = "shipped"
    return out


def host_env(**extra: str) -> dict[str, str]:
    """The environment of a moisson command on the host, reaching the stack's ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(
        REGISTRY_URL="http://127.0.0.1:8081/apis/ccompat/v7",
        DATABASE_URL="postgresql+psycopg://moisson:moisson-dev-only@127.0.0.1:5432/moisson",
        COLUMNS="200",
        **extra,
    )
    return env


def moisson(*args: str, env: dict[str, str], timeout: float = 600) -> str:
    """Run the host's moisson; its output, or a failure carrying it."""
    res = subprocess.run(
        [sys.executable, "-m", "moisson", *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"moisson {' '.join(args)} exited {res.returncode}:\n{out[-4000:]}"
    return out


def record_and_verify(directory: Path, bootstrap: str) -> dict[str, int]:
    """Record the sensor topics from the host's ports into ``directory`` and verify the
    stack's PostgreSQL against the oracle; the verdict's counts."""
    env = host_env(KAFKA_BOOTSTRAP_SERVERS=bootstrap)
    moisson("record", "--out", str(directory), "--until-idle", "5", env=env)
    return verified(moisson("verify", str(directory), env=env))


def verified(out: str) -> dict[str, int]:
    """The counts in `moisson verify`'s verdict line."""
    found = re.search(
        r"PostgreSQL equals the oracle: ([\d,]+) citizens, ([\d,]+) events, ([\d,]+) ledger\s+"
        r"entries, ([\d,]+) blacklist periods; ([\d,]+) events lost, ([\d,]+) applied twice",
        out,
    )
    assert found, f"no verdict in verify's output:\n{out[-3000:]}"
    keys = ("citizens", "events", "ledger_entries", "blacklist_periods", "lost", "twice")
    return {k: int(v.replace(",", "")) for k, v in zip(keys, found.groups(), strict=True)}


def summary(found: dict[str, Any]) -> list[str]:
    """The report as lines for the terminal."""
    lines = [
        f"engine: {found.get('engine')}; compose {found.get('compose')} "
        f"(built in {found.get('compose_plugin_s')}s, or cached)",
        f"python:3.11-slim-bookworm: {found.get('python_base')}",
        f"stand-in images built in (s): {found.get('standin_build_s')}",
    ]
    for stack in ("single", "cluster"):
        got = found.get(stack)
        if not got:
            continue
        lines.append(f"{stack}:")
        for name, how in got.get("services", {}).items():
            lines.append(f"  {name:<11} {how}")
        for key, value in got.items():
            if key != "services":
                lines.append(f"  {key}: {value}")
    return lines
