"""docker-compose.yml, its cluster override and the Dockerfile, proven without Docker.

Three layers: the Compose Specification JSON schema (shipped copy of compose-go's), the
compose-go loader itself (what `docker compose config` runs, built from tests/compose/load),
and parity checks of the loaded project against moisson's settings and CLI.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import stat
import subprocess
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from moisson.cli import main
from moisson.settings import Settings, settings_env
from tests.compose.project import (
    BASE,
    CLUSTER,
    HERE,
    ROOT,
    brokers,
    load,
    moisson_services,
)

SCHEMA_SHA256 = "f266dcbb043229405d7cedd5aec918f9102c2b3d5e3850808fdd8edd564a43ff"


def setting_names() -> set[str]:
    """Every env name the settings object reads: SECTION_FIELD (see settings_env)."""
    return {
        f"{section}_{field}".upper()
        for section, info in Settings.model_fields.items()
        for field in info.annotation.model_fields  # type: ignore[union-attr]
    }


# --- schema ----------------------------------------------------------------------


def raw(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads((HERE / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_schema_is_the_pinned_copy_of_compose_go():
    digest = hashlib.sha256((HERE / "compose-spec.json").read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256
    go_mod = (HERE / "load" / "go.mod").read_text()
    assert "github.com/compose-spec/compose-go/v2 v2.16.2" in go_mod


def test_the_copy_matches_the_module_the_loader_builds_with(loader: Path):
    res = subprocess.run(
        ["go", "list", "-m", "-json", "github.com/compose-spec/compose-go/v2"],
        cwd=HERE / "load",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    module = Path(json.loads(res.stdout)["Dir"])
    shipped = (HERE / "compose-spec.json").read_bytes()
    assert (module / "schema" / "compose-spec.json").read_bytes() == shipped


@pytest.mark.parametrize("path", [BASE, CLUSTER], ids=lambda p: p.name)
def test_files_follow_the_compose_specification(validator: Any, path: Path):
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(raw(path))
    ]
    assert errors == []


def test_the_schema_check_can_fail(validator: Any):
    doc = raw(BASE)
    doc["services"]["processor"]["depends_on"]["topics"]["condition"] = "service_done"
    doc["services"]["sink"]["healthcheck"]["retries"] = "four"
    assert len(list(validator.iter_errors(doc))) == 2


def test_the_loader_rejects_an_undefined_dependency(loader: Path, tmp_path: Path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(BASE.read_text().replace("      sink:  ", "      sinkk: "))
    res = subprocess.run([str(loader), str(broken)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and 'undefined service "sinkk"' in res.stderr


# --- parity with the settings and the CLI -----------------------------------------


def test_the_settings_env_rule_is_the_one_tested():
    assert set(settings_env(Settings())) <= setting_names()
    assert {"KAFKA_BOOTSTRAP_SERVERS", "REGISTRY_URL", "DATABASE_PASSWORD"} <= setting_names()


def test_every_moisson_env_var_is_a_setting_and_parses(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    services = moisson_services(project)
    assert set(services) == {"topics", "processor", "sink", "sensors", "dashboard"}
    for name, service in services.items():
        env = service["environment"]
        assert set(env) <= setting_names(), f"{name}: not settings: {set(env) - setting_names()}"
        for key in setting_names():
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        parsed = settings_env(Settings())
        assert {k: parsed[k] for k in env} == env, name


def command_of(args: list[str]) -> tuple[click.Command, list[str]]:
    assert isinstance(main, click.Group)
    name, *rest = args
    assert name in main.commands, f"moisson has no command {name!r}"
    return main.commands[name], rest


def test_every_command_is_a_real_moisson_command(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    """Each command (and each `moisson health` probe) parses with the service's env."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["moisson"]' in dockerfile
    runner = CliRunner()
    for name, service in moisson_services(project).items():
        for key in setting_names():
            monkeypatch.delenv(key, raising=False)
        for key, value in service["environment"].items():
            monkeypatch.setenv(key, value)
        probe = service["healthcheck"]["test"]
        assert probe[:2] == ["CMD", "moisson"], name
        for args in (service["command"], probe[2:]):
            res = runner.invoke(main, [*args, "--help"])
            assert res.exit_code == 0, (name, args, res.output)
            command, rest = command_of(args)
            command.make_context(args[0], list(rest))  # types, choices, callbacks: no run


def test_processor_scales(project: dict[str, Any]):
    processor = project["services"]["processor"]
    assert "container_name" not in processor and not processor.get("ports")
    assert processor["environment"]["PROCESSOR_WEB_ENABLED"] == "true"
    web = f"http://127.0.0.1:{Settings().processor.web_port}/"
    assert web in processor["healthcheck"]["test"]


def test_every_service_has_a_health_check(project: dict[str, Any]):
    for name, service in project["services"].items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_converge(project: dict[str, Any]):
    services = project["services"]
    for name, service in services.items():
        for target, dep in (service.get("depends_on") or {}).items():
            assert target in services, (name, target)
            condition = dep["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (
                name,
                target,
            )
            if condition == "service_completed_successfully":
                assert services[target]["restart"] == "no", (name, target)
    for name in ("topics", "sensors"):
        assert services[name]["restart"] == "no"
    for name in ("processor", "sink", "sensors"):
        assert services[name]["depends_on"]["topics"]["condition"] == (
            "service_completed_successfully"
        )
    assert set(brokers(project)) <= set(services["topics"]["depends_on"])


def test_ports_are_the_settings_defaults_on_loopback(project: dict[str, Any]):
    services = project["services"]
    defaults = Settings()
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert port["host_ip"] == "127.0.0.1", name
    kafka_host, kafka_port = defaults.kafka.bootstrap_servers.split(":")
    kafka = services["kafka"]
    assert [(p["host_ip"], p["published"]) for p in kafka["ports"]] == [(kafka_host, kafka_port)]
    assert f"HOST://{kafka_host}:{kafka_port}" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    pg = services["postgres"]
    db = defaults.database
    assert [(p["host_ip"], p["published"]) for p in pg["ports"]] == [(db.host, str(db.port))]
    assert pg["environment"]["POSTGRES_USER"] == db.user
    assert pg["environment"]["POSTGRES_PASSWORD"] == db.password.get_secret_value()
    assert pg["environment"]["POSTGRES_DB"] == db.name
    for name, service in moisson_services(project).items():
        env = service["environment"]
        assert env["DATABASE_USER"] == db.user and env["DATABASE_NAME"] == db.name, name
        assert env["DATABASE_PASSWORD"] == db.password.get_secret_value(), name
        assert env["DATABASE_HOST"] == "postgres" and env["DATABASE_PORT"] == str(db.port), name
        assert env["KAFKA_PARTITIONS"] == str(defaults.kafka.partitions), name
        assert "TOPICS_PREFIX" not in env, name  # the default topic names, as on the host


def test_dashboard_listens_inside_and_publishes_on_loopback(project: dict[str, Any]):
    dashboard = project["services"]["dashboard"]
    command, rest = command_of(dashboard["command"])
    params = command.make_context("dashboard", list(rest)).params
    assert params["host"] == "0.0.0.0"
    assert [(p["host_ip"], p["target"]) for p in dashboard["ports"]] == [
        ("127.0.0.1", params["port"])
    ]
    assert f"http://127.0.0.1:{params['port']}/" in dashboard["healthcheck"]["test"]


def test_every_broker_is_in_every_bootstrap_list(project: dict[str, Any]):
    services = project["services"]
    internal = set()
    for name, broker in brokers(project).items():
        advertised = broker["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        assert f"INTERNAL://{name}:19092" in advertised.split(","), name
        internal.add(f"{name}:19092")
    for name, service in moisson_services(project).items():
        assert set(service["environment"]["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == internal, name
    ui = services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"]
    assert set(ui.split(",")) == internal
    registry = services["registry"]["environment"]["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"]
    assert set(registry.split(",")) == internal


def test_one_registry_for_producers_consumers_and_kafka_ui(project: dict[str, Any]):
    services = project["services"]
    urls = {s["environment"]["REGISTRY_URL"] for s in moisson_services(project).values()}
    assert urls == {services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"]}
    url = urlsplit(urls.pop())
    assert url.path == "/apis/ccompat/v7"
    assert url.hostname == "registry" and services["registry"]["image"].startswith(
        "apicurio/apicurio-registry:3."
    )
    assert url.path in " ".join(services["registry"]["healthcheck"]["test"])


def test_images_are_pinned_and_kafka_is_the_ci_release(project: dict[str, Any]):
    for name, service in project["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", name
    for broker in brokers(project).values():
        assert broker["image"] == f"apache/kafka:{Settings().stack.kafka_version}"
    services = project["services"]
    assert services["postgres"]["image"] == "postgres:18.4"
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", services["prometheus"]["image"])
    assert re.fullmatch(r"grafana/grafana:12\.\d+\.\d+", services["grafana"]["image"])


def test_postgres_health_check_asks_the_tcp_server(project: dict[str, Any]):
    """On a first run the image's init server listens on the Unix socket only: over the
    socket pg_isready would pass before the real server (TCP) is up."""
    test = project["services"]["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    hosts = [b for a, b in itertools.pairwise(test) if a in ("-h", "--host")]
    assert hosts == ["127.0.0.1"], test


def test_data_lives_in_named_volumes(project: dict[str, Any]):
    services = project["services"]
    for name in [*brokers(project), "postgres"]:
        mounts = services[name]["volumes"]
        assert [m["type"] for m in mounts] == ["volume"], name
        assert mounts[0]["source"] in project["volumes"], name
    assert services["postgres"]["volumes"][0]["target"] == "/var/lib/postgresql"
    for name, target in (("prometheus", "/prometheus"), ("grafana", "/var/lib/grafana")):
        data = [m for m in services[name]["volumes"] if m["target"] == target]
        assert [m["type"] for m in data] == ["volume"], name
        assert data[0]["source"] in project["volumes"], name
    for broker in brokers(project).values():
        assert broker["volumes"][0]["target"] == broker["environment"]["KAFKA_LOG_DIRS"]


def test_the_cluster_has_three_brokers_and_replication_factor_three(loader: Path):
    cluster = load(loader, BASE, CLUSTER)
    found = brokers(cluster)
    assert len(found) == 3
    ids = sorted(b["environment"]["KAFKA_NODE_ID"] for b in found.values())
    assert ids == ["1", "2", "3"]
    voters = {f"{b['environment']['KAFKA_NODE_ID']}@{n}:9093" for n, b in found.items()}
    for b in found.values():
        env = b["environment"]
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert len({x["environment"]["CLUSTER_ID"] for x in found.values()}) == 1
        for key in (
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        ):
            assert env[key] == "3", key
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    for name, service in moisson_services(cluster).items():
        assert service["environment"]["KAFKA_REPLICATION_FACTOR"] == "3", name
    single = load(loader, BASE)
    assert len(brokers(single)) == 1
    assert all(
        s["environment"]["KAFKA_REPLICATION_FACTOR"] == "1"
        for s in moisson_services(single).values()
    )


# --- the image -----------------------------------------------------------------


def test_the_image_installs_the_way_ci_does():
    """make install (what CI runs) and the Dockerfile both call scripts/install.sh."""
    script = ROOT / "scripts" / "install.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/install.sh $(VENV) -e '.[dev,embedded]'" in recipe
    runs = re.findall(r"^RUN (.+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    installs = [r for r in runs if "install" in r]
    assert installs == ["scripts/install.sh /opt/venv ."]
    assert not any("pip" in r for r in runs)


def test_the_image_is_multi_stage_slim_and_runs_as_a_numeric_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert len(stages) == 2 and all(re.fullmatch(r"python:3\.\d+-slim-\w+", s) for s in stages)
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.MULTILINE)
    final = dockerfile.split("\nFROM ")[-1]
    assert "COPY --from=build /opt/venv /opt/venv" in final


def test_dockerignore_keeps_what_the_image_copies():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = re.findall(r"^COPY (?!--)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    sources = [s for line in copied for s in line.split()]
    assert {"pyproject.toml", "scripts/install.sh", "moisson", "schemas"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch(source, p) or source.startswith(p + "/") for p in patterns)
    assert {"tests", ".venv", ".git"} <= set(patterns)
