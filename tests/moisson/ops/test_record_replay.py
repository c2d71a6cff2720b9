"""Record, replay and verify on real Kafka and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import update

from moisson.ops import pipeline
from moisson.ops.read_to_end import read_to_end
from moisson.ops.replay import record
from moisson.ops.verify import last_sanctions
from moisson.settings import SENSOR_KINDS, Settings, settings_env
from processors.core.oracle import Oracle
from producers.city import generate_events
from producers.publisher import ensure_topics
from schemas.codec import SANCTION, encode
from sinks.postgres.tables import citizen_profiles
from sinks.postgres.writer import PostgresSink
from tests.factories import sanction
from tests.golden.make_golden import RECORDING

pytestmark = pytest.mark.integration

MOISSON = [sys.executable, "-m", "moisson"]


def cli(args: list[str], settings: Settings, timeout: float = 300):
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run(
        [*MOISSON, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def read_partitions(settings: Settings, topic: str, partitions: int) -> dict[int, list[tuple]]:
    """Every record of ``topic``, per partition, from the beginning to its end: the end
    ListOffsets or the fetches' high-water marks report (:func:`read_to_end`, right on
    Tansu too), and a quarter second without a record. The topic is complete when read
    (its producer flushed and closed, or the replay exited)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False
    )
    out: dict[int, list[tuple]] = {}

    def keep(tp: TopicPartition, r) -> None:
        out.setdefault(r.partition, []).append((r.key, r.value, tuple(r.headers or ())))

    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        read_to_end(consumer, tps, keep, timeout=60.0, idle_s=0.25)
        return out
    finally:
        consumer.close()


def test_record_then_replay_keeps_keys_values_headers_and_order(settings, tmp_path: Path):
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    events = list(generate_events(5, 80, 600, sanctions=Oracle()))
    for i, e in enumerate(events):
        producer.send(
            settings.topics.sensor(e.kind),
            key=e.citizen_id.encode(),
            value=e.encode(),
            headers=[("trace", str(i).encode()), ("empty", b"")],
        )
    producer.flush()
    producer.close()

    rec_dir = tmp_path / "rec"
    manifest = record(settings, rec_dir, settings.topics.sensors, until_idle=3)
    assert manifest["count"] == len(events)

    replayed = settings.replace(topics={"prefix": settings.topics.prefix + "again."})
    res = cli(["replay", str(rec_dir), "--speed", "max"], replayed)
    assert res.returncode == 0, res.stderr
    assert f"replayed {len(events):,} messages" in res.stderr
    for kind in SENSOR_KINDS:
        before = read_partitions(settings, settings.topics.sensor(kind), 4)
        after = read_partitions(replayed, replayed.topics.sensor(kind), 4)
        assert before == after, kind
        assert any(h for msgs in after.values() for _, _, h in msgs)


def start_workers(settings: Settings, n: int, tmp_path: Path, procs: list) -> None:
    for i in range(n):
        s = settings.replace(processor={"data_dir": tmp_path / f"faust-{i}"})
        worker = pipeline.start_worker(s, tmp_path / f"worker-{i}.log")
        procs.append(worker)
    for i, worker in enumerate(procs[-n:]):
        pipeline.wait_for_log(tmp_path / f"worker-{i}.log", "Worker ready", 180, worker)
    procs.append(pipeline.start_sink(settings, tmp_path / "sink.log"))


def golden_run(settings: Settings, procs: list, tmp_path: Path, workers: int):
    partitions = settings.kafka.partitions
    replay = cli(
        ["replay", str(RECORDING), "--speed", "max", "--partitions", str(partitions)], settings
    )
    assert replay.returncode == 0, replay.stderr
    if partitions != 4:
        assert "re-partitioned by key" in replay.stderr
    start_workers(settings, workers, tmp_path, procs)
    verified = cli(["verify", str(RECORDING), "--timeout", "240"], settings)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "PostgreSQL equals the oracle" in verified.stderr
    assert (
        f"{settings.topics.sanctions} agrees with the oracle: "
        f"{len(GOLDEN_BLACKLISTED)} citizen(s) under an active sanction"
    ) in verified.stderr
    return verified


#: The citizens blacklisted at the end of the golden recording.
GOLDEN_BLACKLISTED = sorted(
    cid
    for cid, p in json.loads(
        (Path(__file__).parents[2] / "golden" / "expected_profiles.json").read_text()
    ).items()
    if p["blacklisted"]
)


def send_sanctions(settings: Settings, *sanctions: dict) -> None:
    producer = KafkaProducer(**settings.kafka.client_kwargs())
    for s in sanctions:
        producer.send(
            settings.topics.sanctions, key=s["citizen_id"].encode(), value=encode(SANCTION, s)
        )
    producer.flush()
    producer.close()


@pytest.fixture(params=["kafka", "tansu"])
def broker_settings(request: pytest.FixtureRequest) -> Settings:
    """:func:`settings` on the session's Kafka, then on the embedded Tansu broker, whose
    ListOffsets reports an end behind its log (docs/tansu-high-watermark.md)."""
    return request.getfixturevalue("settings" if request.param == "kafka" else "tansu_settings")


def test_golden_one_worker(broker_settings, procs, tmp_path: Path):
    settings = broker_settings.replace(kafka={"partitions": 4})
    golden_run(settings, procs, tmp_path, workers=1)
    # Tamper with one row: verify must fail and say where.
    pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    with pg.engine.begin() as conn:
        conn.execute(
            update(citizen_profiles)
            .where(citizen_profiles.c.citizen_id == "c0000003")
            .values(score=citizen_profiles.c.score + 7)
        )
    pg.close()
    tampered = cli(["verify", str(RECORDING), "--timeout", "5"], settings)
    assert tampered.returncode == 1
    assert "c0000003" in tampered.stdout and "score" in tampered.stdout
    assert "1 difference" in tampered.stdout
    assert "sanction difference" not in tampered.stdout
    assert "agrees with the oracle" in tampered.stderr

    # Tamper with the sanctions topic: a stale lift re-sent after the blacklisting (the
    # sensors' rule ignores it, so must verify), and a forged blacklisting, newer than
    # anything, of a citizen the oracle never blacklists (verify must report it).
    held = last_sanctions(settings)
    assert sorted(c for c, x in held.items() if x["active"]) == GOLDEN_BLACKLISTED
    victim = GOLDEN_BLACKLISTED[0]
    version = held[victim]["double_version"]
    send_sanctions(
        settings,
        sanction(victim, active=False, version=version - 1),
        sanction("c0000005", active=True, version=10**6),
    )
    # --timeout is how long verify waits for sanctions still in flight: none are (the
    # pipeline agreed above), so the forged one stays however long it waits, and each
    # read of the topic still goes to its end (the stale lift is read). 1 s, not 5.
    forged = cli(["verify", str(RECORDING), "--timeout", "1"], settings)
    assert forged.returncode == 1, forged.stdout + forged.stderr
    assert "1 difference(s)" in forged.stdout, "the tampered score is still there"
    assert "1 sanction difference(s)" in forged.stdout
    assert "c0000005" in forged.stdout and "'not blacklisted'" in forged.stdout
    assert victim not in forged.stdout, "the stale lift was ignored"


def test_golden_two_workers_three_partitions(
    broker_settings, procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = broker_settings.replace(kafka={"partitions": 3})
    # The tests' rebalance timeout (3 s, tests/conftest.py) equals faust's heartbeat
    # interval (3 s): a worker learns of the other's join only at its next heartbeat, so
    # it rejoined after the coordinator had given up on it about half the time, was
    # dropped, and its rejoin dropped the other in turn (a rebalance storm: 8 s without,
    # 28 s and 125 s with). A heartbeat every second lets each rejoin in time; faust
    # reads BROKER_HEARTBEAT_INTERVAL from the environment the workers inherit.
    monkeypatch.setenv("BROKER_HEARTBEAT_INTERVAL", "1.0")
    golden_run(settings, procs, tmp_path, workers=2)
    logs = [(tmp_path / f"worker-{i}.log").read_text(errors="replace") for i in range(2)]
    assert all("Worker ready" in log for log in logs)


def test_replaying_twice_changes_nothing(settings, procs, tmp_path: Path):
    """--loop 2 sends every event again: the dedupe makes the repeat a no-op."""
    res = cli(["replay", str(RECORDING), "--speed", "max", "--loop", "2"], settings)
    assert res.returncode == 0, res.stderr
    start_workers(settings, 1, tmp_path, procs)
    # Wait until the processor has consumed every copy, then verify.
    pipeline.wait_for(lambda: processor_lag(settings), lambda lag: lag == 0, timeout=240)
    verified = cli(["verify", str(RECORDING), "--timeout", "240"], settings)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def processor_lag(settings: Settings) -> int:
    """Messages on the sensor topics that the faust app has not committed yet."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        group = settings.processor.app_id
        committed = admin.list_group_offsets(group).get(group, {})
        parts = [
            TopicPartition(t, p)
            for t in settings.topics.sensors
            for p in range(settings.kafka.partitions)
        ]
        ends = consumer.end_offsets(parts)
        # A committed offset past a reported end (Tansu's, a batch behind) is no lag.
        return sum(
            max(0, ends[tp] - (committed[tp].offset if tp in committed else 0)) for tp in parts
        )
    finally:
        admin.close()
        consumer.close()


def test_record_stops_cleanly_on_ctrl_c(settings, tmp_path: Path):
    import signal
    import time

    from moisson.ops.recording import open_recording

    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    events = list(generate_events(9, 30, 200, sanctions=Oracle()))
    for e in events:
        producer.send(settings.topics.sensor(e.kind), key=e.citizen_id.encode(), value=e.encode())
    producer.flush()
    producer.close()
    out = tmp_path / "rec"
    env = {**os.environ, **settings_env(settings)}
    proc = subprocess.Popen(
        [*MOISSON, "record", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(8)  # recording until Ctrl-C, with no --until-idle
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rec = open_recording(out)
    rec.check()
    assert rec.manifest["count"] == len(events)
