"""Two of a service started at the same instant on one host, against the real broker,
with one metrics port: one gets it, the other fails with the ``error:``/``fix:`` lines
before it does anything that counts (a processor or a sink before joining its consumer
group, the sensors before publishing); with port 0, both processors run."""

from __future__ import annotations

import re
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import CoordinatorNotAvailableError

from moisson.ops.pipeline import spawn
from moisson.settings import Settings
from moisson.stack.base import free_port
from producers.publisher import ensure_topics

pytestmark = pytest.mark.integration

READY = "Worker ready"
SERVICE = {"process": "processor", "sink": "sink", "sensors": "sensors"}  # command: port
WHERE = re.compile(r"processor metrics: (http://\S+/metrics)")


def start_two(
    settings: Settings, what: str, port: int, tmp_path: Path, procs: list, *args: str
) -> list:
    """Two ``moisson <what> <args>`` on one ``what`` metrics port, each with its own data
    dir and log, spawned back to back (each then imports for a second or more before it
    binds, so they race)."""
    ensure_topics(settings)
    started = []
    for n in (1, 2):
        s = settings.replace(
            processor={"data_dir": tmp_path / f"faust-{n}"},
            metrics={"host": "127.0.0.1", f"{SERVICE[what]}_port": port},
        )
        argv = [sys.executable, "-m", "moisson", what, *args]
        started.append(spawn(argv, s, tmp_path / f"{what}-{n}.log"))
    procs.extend(started)
    return started


def log_of(tmp_path: Path, what: str, i: int) -> str:
    return (tmp_path / f"{what}-{i + 1}.log").read_text(errors="replace")


def members(admin: KafkaAdminClient, group: str) -> int:
    try:
        return len(admin.describe_groups([group])[group]["members"])
    except CoordinatorNotAvailableError:  # a fresh broker: no group has a coordinator yet
        return 0


def race(
    settings: Settings, what: str, group: str, joined: str, tmp_path: Path, procs: list
) -> tuple[int, int, int, float, int]:
    """Start two ``what`` on one port and watch ``group`` until one has exited and the
    other's log says ``joined`` (then 5 s more): (the port, the winner, the loser, the
    seconds the loser took to exit, the most members the group ever had)."""
    port = free_port()
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        began = time.monotonic()
        pair = start_two(settings, what, port, tmp_path, procs)
        exited: dict[int, float] = {}
        most = 0
        deadline = began + 120
        while time.monotonic() < deadline:
            most = max(most, members(admin, group))
            for i, proc in enumerate(pair):
                if i not in exited and proc.poll() is not None:
                    exited[i] = time.monotonic() - began
            alive = [i for i, proc in enumerate(pair) if proc.poll() is None]
            if exited and alive and joined in log_of(tmp_path, what, alive[0]):
                break
            time.sleep(0.2)
        assert len(exited) == 1, [log_of(tmp_path, what, i)[-2000:] for i in (0, 1)]
        settled = time.monotonic() + 5
        while time.monotonic() < settled:
            most = max(most, members(admin, group))
            time.sleep(0.2)
        assert members(admin, group) == 1
    finally:
        admin.close()
    [(loser, took)] = exited.items()
    lost = log_of(tmp_path, what, loser)
    assert pair[loser].returncode == 1, lost
    service = SERVICE[what]
    assert f"error: {service} metrics cannot listen on 127.0.0.1:{port}" in lost, lost
    assert f"fix: set METRICS_{service.upper()}_PORT to a free port" in lost, lost
    assert "Traceback" not in lost, lost
    assert pair[1 - loser].poll() is None, log_of(tmp_path, what, 1 - loser)[-3000:]
    print(f"\n{what}: the loser exited {took:.1f} s after both were spawned")
    return port, 1 - loser, loser, took, most


def test_one_port_two_processors_the_loser_never_joins_the_group(
    settings: Settings, tmp_path: Path, procs: list
):
    port, winner, loser, took, most = race(
        settings, "process", settings.processor.app_id, READY, tmp_path, procs
    )
    lost = log_of(tmp_path, "process", loser)
    assert READY not in lost and "assigned partitions" not in lost, lost
    assert most == 1, f"the group had {most} members"
    won = log_of(tmp_path, "process", winner)
    assert won.count(READY) == 1, won[-3000:]
    [url] = WHERE.findall(won)
    assert url == f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert "moisson_processor_" in answer.read().decode()
    assert took < 60


def test_one_port_two_sinks_the_loser_never_joins_the_group(
    settings: Settings, tmp_path: Path, procs: list
):
    from sinks.postgres.writer import PostgresSink

    # The tables first, so that the two sinks do not also race to create them.
    PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name).close()
    _, _, loser, _, most = race(settings, "sink", settings.sink.group_id, "sink:", tmp_path, procs)
    assert most == 1, f"the group had {most} members"
    assert "(group " not in log_of(tmp_path, "sink", loser)


def test_one_port_two_sensors_the_loser_publishes_nothing(
    settings: Settings, tmp_path: Path, procs: list
):
    port = free_port()
    # 100 events at 10 a second: the winner holds the port for 10 s.
    args = ("--count", "100", "--rate", "10", "--sanctions", "none")
    pair = start_two(settings, "sensors", port, tmp_path, procs, *args)
    codes = [proc.wait(120) for proc in pair]
    assert sorted(codes) == [0, 1], [log_of(tmp_path, "sensors", i)[-2000:] for i in (0, 1)]
    lost = log_of(tmp_path, "sensors", codes.index(1))
    assert f"error: sensors metrics cannot listen on 127.0.0.1:{port}" in lost, lost
    assert "fix: set METRICS_SENSORS_PORT to a free port" in lost, lost
    consumer = KafkaConsumer(**settings.kafka.client_kwargs())
    try:
        parts = [tp for topic in settings.topics.sensors for tp in _partitions(consumer, topic)]
        assert sum(consumer.end_offsets(parts).values()) == 100
    finally:
        consumer.close()


def _partitions(consumer: KafkaConsumer, topic: str) -> list:
    from kafka import TopicPartition

    return [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]


def test_port_0_two_processors_both_run(settings: Settings, tmp_path: Path, procs: list):
    pair = start_two(settings, "process", 0, tmp_path, procs)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = [log_of(tmp_path, "process", i) for i in (0, 1)]
        if all(WHERE.search(log) for log in logs) or any(p.poll() is not None for p in pair):
            break
        time.sleep(0.5)
    assert [p.poll() for p in pair] == [None, None], [log[-2000:] for log in logs]
    urls = [WHERE.findall(log) for log in logs]
    assert all(len(u) == 1 for u in urls) and urls[0] != urls[1], urls
    for [url] in urls:
        assert not url.endswith(":0/metrics")
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert "moisson_processor_" in answer.read().decode()
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        deadline = time.monotonic() + 60
        while members(admin, settings.processor.app_id) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert members(admin, settings.processor.app_id) == 2
    finally:
        admin.close()
