"""What the compose tests share: the files, the loader's output, and views of it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "compose"
BASE = ROOT / "docker-compose.yml"
CLUSTER = ROOT / "docker-compose.cluster.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "moisson.json"
STACKS = {"single": [BASE], "cluster": [BASE, CLUSTER]}
IMAGE = "moisson:dev"


def load(loader: Path, *files: Path) -> dict[str, Any]:
    res = subprocess.run(
        [str(loader), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")},
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def moisson_services(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in project["services"].items() if s.get("image") == IMAGE}


def brokers(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s
        for n, s in project["services"].items()
        if s.get("image", "").startswith("apache/kafka:")
    }
