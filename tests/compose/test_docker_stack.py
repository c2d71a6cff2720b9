"""docker-compose.yml, built and run for real: the engineers' first path (`make compose-test`).

Every moisson service runs as shipped; the third-party ones run as local stand-ins
(standins.yml; the report names which). In order, as an engineer would: build, up,
healthy, two processors, a run of the sensors checked against the oracle from the host,
Prometheus and the dashboard, then a clean `down -v`.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.compose.live import Compose, Stops, down_cleanly, stack_up
from tests.compose.project import BASE, IMAGE
from tests.compose.report import OVERRIDE, record_and_verify, services

pytestmark = pytest.mark.docker

FILES = [BASE, OVERRIDE]
#: The second run of the sensors: a day of another city (the shipped week is stopped).
RUN = ["sensors", "--days", "1", "--seed", "7"]
PROMETHEUS = "http://127.0.0.1:9090/api/v1/"


@pytest.fixture(scope="module")
def single(
    docker_env: dict[str, str], report: dict[str, Any]
) -> Iterator[tuple[Compose, dict[str, Any]]]:
    """The single-broker stack, up and healthy; torn down (logs kept) whatever happens."""
    compose = Compose("moisson-ci", FILES, docker_env)
    got: dict[str, Any] = {"services": services(FILES)}
    report["single"] = got
    started = time.monotonic()
    compose("build")
    got["image_build_s"] = round(time.monotonic() - started, 1)
    with stack_up(compose, "single", got, timeout=300):
        yield compose, got


def moisson_containers(compose: Compose) -> dict[str, str]:
    """Running containers of the moisson image: name -> service."""
    return {
        c["Name"]: c["Service"]
        for c in compose.ps()
        if c["Image"] == IMAGE and c["State"] == "running"
    }


def test_up_reaches_healthy_and_topics_exits_zero(single: tuple[Compose, dict[str, Any]]):
    compose, got = single
    service = compose.service_of()
    states = {service[n]: s for n, s in got["states"].items()}
    shipped_or_standin = {n for n, how in got["services"].items() if not how.startswith("not")}
    assert set(states) == shipped_or_standin
    assert states.pop("topics") == "exited (0)"
    assert set(states.values()) == {"healthy"}


def test_moisson_containers_run_as_a_user_not_root(single: tuple[Compose, dict[str, Any]]):
    compose, got = single
    users = {}
    for name, service in moisson_containers(compose).items():
        index = name.rsplit("-", 1)[1]
        res = compose("exec", "-T", "--index", index, service, "id", "-u")
        users[name] = int(res.stdout)
    got["moisson_uids"] = sorted(set(users.values()))
    assert len(users) >= 4  # processor, sink, sensors, dashboard
    assert 0 not in users.values()


def test_dashboard_answers_on_the_hosts_loopback(single: tuple[Compose, dict[str, Any]]):
    _, got = single
    with urllib.request.urlopen("http://127.0.0.1:8350/", timeout=10) as res:
        got["dashboard_status"] = res.status
        assert res.status == 200
        assert b"moisson" in res.read().lower()


def targets() -> list[tuple[str, str, str]]:
    """Prometheus's active targets: (job, instance, health)."""
    return [
        (t["labels"]["job"], t["labels"]["instance"], t["health"])
        for t in query("targets")["activeTargets"]
    ]


def test_prometheus_scrapes_every_moisson_service(single: tuple[Compose, dict[str, Any]]):
    _, got = single
    deadline = time.monotonic() + 60
    while not ((seen := targets()) and all(t[2] == "up" for t in seen)):
        assert time.monotonic() < deadline, f"targets not all up: {seen}"
        time.sleep(2)
    got["scrape_targets_first"] = sorted(" ".join(t) for t in seen)
    assert {t[0] for t in seen} == {"processor", "sink", "sensors", "dashboard"}


def test_sensors_stop_on_sigterm(single: tuple[Compose, dict[str, Any]]):
    compose, got = single
    with Stops(compose.env) as stops:
        started = time.monotonic()
        compose("stop", "sensors")
    got["sensors_stop_s"] = round(time.monotonic() - started, 1)
    assert stops.killed_after_grace() == []
    (sensors,) = [c for c in compose.ps() if c["Service"] == "sensors"]
    assert (sensors["State"], sensors["ExitCode"]) == ("exited", 0)


def test_two_processors_verified_against_the_oracle(
    single: tuple[Compose, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
):
    compose, got = single
    started = time.monotonic()
    compose("up", "-d", "--scale", "processor=2", "processor")
    compose.wait_ready(180, "processor")
    got["scale_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    # --no-deps: without it, `run` brings its dependencies back to their declared scale,
    # and removes the second processor.
    compose("run", "--rm", "--no-deps", "sensors", *RUN)
    got["sensors_run_s"] = round(time.monotonic() - started, 1)
    recording = tmp_path_factory.mktemp("recording") / "single"
    counts = record_and_verify(recording, "127.0.0.1:9092")
    got["verified"] = counts
    assert counts["events"] > 0
    assert (counts["lost"], counts["twice"]) == (0, 0)


def query(path: str, **params: str) -> Any:
    url = PROMETHEUS + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as res:
        return json.load(res)["data"]


def test_prometheus_finds_both_processors_and_counts_every_event(
    single: tuple[Compose, dict[str, Any]],
):
    """Both replicas through DNS (dns_sd_configs), and what they applied adds up to the
    oracle's events."""
    _, got = single
    events = got["verified"]["events"]
    deadline = time.monotonic() + 60
    while True:
        processors = [t for t in targets() if t[0] == "processor"]
        result = query("query", query="sum(moisson_events_applied_total)")["result"]
        applied = int(float(result[0]["value"][1])) if result else None
        if len(processors) == 2 and all(t[2] == "up" for t in processors) and applied == events:
            break
        assert time.monotonic() < deadline, f"processors {processors}; applied {applied}/{events}"
        time.sleep(2)
    got["scrape_processors"] = sorted(" ".join(t) for t in processors)
    got["events_applied_metric"] = applied


def test_down_stops_every_service_on_sigterm_within_40s(single: tuple[Compose, dict[str, Any]]):
    compose, got = single
    got["killed_after_grace"] = down_cleanly(compose, "single", got)
    assert got["down_s"] < 40
    assert got["killed_after_grace"] == []
    assert compose.ps() == []
