"""The image is built once; Prometheus scrapes every moisson service; Grafana is
provisioned from files; shell scripts keep LF line endings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from moisson.settings import Settings
from tests.compose.project import BASE, IMAGE, ROOT, load

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "moisson.json"
#: The port each moisson service serves /metrics on (the dashboard: its own port).
METRICS_PORTS = {
    "processor": Settings().metrics.processor_port,
    "sink": Settings().metrics.sink_port,
    "sensors": Settings().metrics.sensors_port,
    "dashboard": 8350,
}


def ancestors(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    """Every service `name` waits for, through depends_on, transitively."""
    seen: set[str] = set()
    todo = list(services[name].get("depends_on") or {})
    while todo:
        dep = todo.pop()
        if dep not in seen and dep in services:
            seen.add(dep)
            todo.extend(services[dep].get("depends_on") or {})
    return seen


def single_build_problems(services: dict[str, dict[str, Any]]) -> list[str]:
    """The single-build rule, or what breaks it.

    Two services building one tag fail with compose's bake builder (compose >= 2.37:
    `image "moisson:dev": already exists`, docker/buildx#3576). So exactly one service has
    `build` (and builds moisson:dev); the other moisson:dev services never pull it (it is on
    no registry) and wait, through depends_on, for the one that builds it.
    """
    builders = sorted(n for n, s in services.items() if s.get("build"))
    if len(builders) != 1:
        return [f"{len(builders)} services build an image: {builders}"]
    builder = builders[0]
    problems = []
    if services[builder].get("image") != IMAGE:
        problems.append(f"{builder} builds {services[builder].get('image')!r}, not {IMAGE}")
    for name, service in services.items():
        if service.get("image") != IMAGE or name == builder:
            continue
        if service.get("pull_policy") != "never":
            problems.append(f"{name}: pull_policy {service.get('pull_policy')!r} pulls {IMAGE}")
        if builder not in ancestors(services, name):
            problems.append(f"{name} does not wait for {builder}, which builds {IMAGE}")
    if services[builder].get("pull_policy") not in ("build", "never"):
        problems.append(f"{builder}: pull_policy {services[builder].get('pull_policy')!r}")
    return problems


def test_one_service_builds_the_image(project: dict[str, Any]):
    services = project["services"]
    assert single_build_problems(services) == []
    (builder,) = (n for n, s in services.items() if s.get("build"))
    assert builder == "topics"
    assert services[builder]["build"]["context"] == str(ROOT)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # what the anchor was: every moisson service builds, and may pull
        (
            "  image: moisson:dev\n  pull_policy: never\n",
            "  build: .\n  image: moisson:dev\n",
            "5 services build",
        ),
        ("    build: .                      #", "    #", "0 services build"),
        (
            "  image: moisson:dev\n  pull_policy: never\n",
            "  image: moisson:dev\n",
            "pulls moisson:dev",
        ),
        # the dashboard no longer waits for the sink, hence for topics
        (
            "      sink:                           #",
            "      kafka:                          #",
            "dashboard does not wait",
        ),
    ],
    ids=["all-build", "none-builds", "pulls", "no-wait"],
)
def test_the_single_build_rule_can_fail(
    loader: Path, tmp_path: Path, old: str, new: str, expected: str
):
    text = BASE.read_text()
    assert text.count(old) == 1, old
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new))
    problems = single_build_problems(load(loader, broken)["services"])
    assert any(expected in p for p in problems), problems


def scrape_targets() -> dict[str, list[str]]:
    """job -> the host:port targets deploy/prometheus/prometheus.yml names."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    out: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        targets = [t for c in job.get("static_configs", []) for t in c["targets"]]
        targets += [f"{n}:{d['port']}" for d in job.get("dns_sd_configs", []) for n in d["names"]]
        out[job["job_name"]] = targets
    return out


def test_prometheus_scrapes_every_moisson_service_on_its_metrics_port(project: dict[str, Any]):
    services = project["services"]
    assert scrape_targets() == {name: [f"{name}:{port}"] for name, port in METRICS_PORTS.items()}
    for name in METRICS_PORTS:
        assert services[name]["image"] == IMAGE, name
        assert services[name]["environment"]["METRICS_HOST"] == "0.0.0.0", name
    # The processor scales: each replica is its own DNS answer, hence its own target.
    (processor,) = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][:1]
    assert processor["dns_sd_configs"][0]["type"] == "A"


def test_prometheus_and_grafana_mount_the_project_files(project: dict[str, Any]):
    services = project["services"]

    def binds(name: str) -> dict[str, str]:
        return {
            m["target"]: m["source"]
            for m in services[name]["volumes"]
            if m["type"] == "bind" and m.get("read_only")
        }

    assert binds("prometheus")["/etc/prometheus/prometheus.yml"] == str(PROMETHEUS_CONFIG)
    grafana = binds("grafana")
    assert grafana["/etc/grafana/provisioning"] == str(GRAFANA / "provisioning")
    assert grafana["/etc/grafana/dashboards"] == str(DASHBOARD.parent)
    assert "prometheus" in services["grafana"]["depends_on"]


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard():
    prov = GRAFANA / "provisioning"
    (source,) = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    (provider,) = yaml.safe_load((prov / "dashboards" / "moisson.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"


def test_every_dashboard_panel_queries_the_prometheus_datasource():
    """Valid JSON; every panel a Prometheus target with plain PromQL (the scrape test runs
    each query against a real Prometheus, which knows no Grafana variables)."""
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "moisson" and board["panels"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert "moisson_" in target["expr"] and "$" not in target["expr"], panel["title"]


def test_shell_scripts_keep_lf_line_endings():
    """A Windows checkout would otherwise turn scripts/install.sh into CRLF, and the
    image's `RUN scripts/install.sh` would fail."""
    res = subprocess.run(
        ["git", "check-attr", "text", "eol", "--", "scripts/install.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "text: set" in res.stdout and "eol: lf" in res.stdout, res.stdout


@pytest.mark.parametrize("name", sorted(METRICS_PORTS))
def test_metrics_ports_are_the_settings_defaults(project: dict[str, Any], name: str):
    """The scrape targets follow the settings: nothing in compose overrides a port."""
    env = project["services"][name]["environment"]
    assert not {k for k in env if k.endswith("_PORT") and k.startswith("METRICS_")}, name
