"""What every crash drill shares: the size, the seeded recording, the pipeline's
processes, progress probes, and the final proof (PostgreSQL equals the oracle,
nothing lost, nothing applied twice)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moisson.ops import pipeline
from moisson.ops.recording import Recording
from moisson.ops.replay import ReplaySummary, plan_replay, replay
from moisson.ops.verify import caught_up, settle, tally, wait_sanctions
from moisson.settings import Settings
from producers.publisher import ensure_topics
from sinks.postgres.reader import PostgresReader
from tests.factories import pg_reader

SEED = 2026


@dataclass(frozen=True)
class Size:
    """How hard the drills push: ``ci`` in `make test`, ``full`` in `make drills`."""

    name: str
    events: int
    citizens: int
    processor_kills: int
    sink_kills: int
    outage_s: float
    paced_s: float  # how long a paced replay (broker and database drills) lasts
    timeout_s: float  # the longest a drill may wait for the pipeline to catch up


#: Citizens are few enough that the seeded city's 20,000 (100,000) events span about 12
#: days, so the calibrated scale blacklists some (9; 43) and the sanction drills bite.
SIZES = {
    "ci": Size("ci", 20_000, 200, 3, 2, 30.0, 30.0, 300.0),
    "full": Size("full", 100_000, 1_000, 10, 5, 30.0, 90.0, 900.0),
}


def size() -> Size:
    """``DRILLS_SIZE`` (``ci`` or ``full``) chooses; `make drills` sets ``full``."""
    name = os.environ.get("DRILLS_SIZE", "ci")
    if name not in SIZES:
        raise ValueError(f"DRILLS_SIZE={name!r}: choose one of {', '.join(SIZES)}")
    return SIZES[name]


def kill_points(drill: str, n: int, low: float = 0.05, high: float = 0.95) -> list[float]:
    """``n`` seeded fractions of the work at which the drill strikes, in order."""
    rng = random.Random(f"{SEED}:{drill}")
    return sorted(round(rng.uniform(low, high), 3) for _ in range(n))


@dataclass
class Result:
    """One drill's row in the results table."""

    drill: str
    events: int
    kill_points: list[float]
    lost: int
    duplicated: int
    differences: int
    resume_s: list[float]
    recovery_s: float
    notes: str = ""

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.differences == 0


RESULTS: list[Result] = []


def results_table(results: list[Result]) -> list[str]:
    head = (
        f"{'drill':<24} {'events':>8} {'kills':>5} {'lost':>5} {'dup':>5} "
        f"{'diffs':>5} {'resume s (max)':>14} {'recovery s':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.drill:<24} {r.events:>8,} {len(r.kill_points):>5} {r.lost:>5} "
            f"{r.duplicated:>5} {r.differences:>5} "
            f"{max(r.resume_s, default=0.0):>14.1f} {r.recovery_s:>10.1f}"
        )
    return lines


def write_results(path: Path, results: list[Result], drill_size: Size) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "size": drill_size.name,
                "cores": os.cpu_count(),
                "drills": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n"
    )


STALL_S = 90.0


class Stall:
    """True once ``probe()`` has not changed for ``seconds``: the pipeline is stuck
    (an event lost for good never arrives), so waiting longer proves nothing."""

    def __init__(self, probe: Any, seconds: float) -> None:
        self.probe, self.seconds = probe, seconds
        self.last: Any = None
        self.since = time.monotonic()

    def __call__(self) -> bool:
        now, value = time.monotonic(), self.probe()
        if value != self.last:
            self.last, self.since = value, now
        return now - self.since >= self.seconds


@dataclass
class Pipeline:
    """The real pipeline of one drill: faust workers, the sink, their logs, and probes."""

    settings: Settings
    logs: Path
    recording: Recording
    expected: dict[str, Any]
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    sink: subprocess.Popen[bytes] | None = None
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _runs: dict[str, int] = field(default_factory=dict)
    _pg: PostgresReader | None = None
    _admin: Any = None

    @property
    def events(self) -> int:
        return sum(d["version"] for d in self.expected.values())

    def _log(self, name: str) -> Path:
        n = self._runs[name] = self._runs.get(name, 0) + 1
        return self.logs / f"{name}-{n}.log"

    def start_worker(self, i: int = 0, timeout: float = 180.0) -> float:
        """Start worker ``i`` (again) and wait until it owns partitions; the seconds it took."""
        proc, took = pipeline.start_worker_ready(
            self._worker_settings(i), self._log(f"worker-{i}"), timeout
        )
        self.workers[i] = proc
        self.started.append(proc)
        return took

    def start_faulty_worker(self, fault: str) -> subprocess.Popen[bytes]:
        """A worker told to exit at a fault point (not watched by ``alive``)."""
        s = self._worker_settings(0).replace(processor={"fault": fault})
        proc = pipeline.start_worker(s, self._log("worker-faulty"))
        self.started.append(proc)
        return proc

    def _worker_settings(self, i: int) -> Settings:
        return self.settings.replace(processor={"data_dir": self.logs / f"faust-{i}"})

    def start_sink(self, ready: bool = False, timeout: float = 120.0) -> None:
        """Start the sink; with ``ready``, wait until it has made its topics and joined
        its group (a broker killed while it starts would end it with "cannot reach
        Kafka", as it should: that is not what a drill measures)."""
        log = self._log("sink")
        self.sink = pipeline.start_sink(self.settings, log)
        self.started.append(self.sink)
        if ready:
            pipeline.wait_for_log(log, "(group ", timeout, self.sink)

    def alive(self) -> str | None:
        """Why the pipeline cannot finish (a process died unasked), or None."""
        procs = [(f"worker-{i}", p) for i, p in self.workers.items()]
        procs += [("sink", self.sink)] if self.sink is not None else []
        for name, proc in procs:
            if proc is not None and proc.poll() is not None:
                log = self.logs / f"{name}-{self._runs[name]}.log"
                tail = log.read_text(errors="replace")[-3000:]
                return f"{name} exited with {proc.returncode} unasked:\n{tail}"
        return None

    @property
    def pg(self) -> PostgresReader:
        if self._pg is None:
            self._pg = pg_reader(
                self.settings.database.sqlalchemy_url(), self.settings.database.schema_name
            )
        return self._pg

    def stored(self) -> int:
        """Events reflected in PostgreSQL (the sum of the stored versions)."""
        return sum(p["version"] for p in self.pg.profiles().values())

    def applied(self) -> int:
        """Sensor events the harvester has applied and flushed: the sum of its group's
        committed offsets, which are its positions (at most a second behind)."""
        return sum(self.positions().values())

    def positions(self) -> dict[tuple[str, int], int]:
        """The harvester group's committed offset of each sensor partition (none yet: {})."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        if self._admin is None:
            self._admin = KafkaAdminClient(**self.settings.kafka.client_kwargs())
        group = self.settings.processor.app_id
        try:
            got = self._admin.list_group_offsets(group).get(group, {})
        except KafkaError:  # no group yet
            return {}
        sensors = set(self.settings.topics.sensors)
        return {
            (tp.topic, tp.partition): max(0, o.offset)
            for tp, o in got.items()
            if tp.topic in sensors
        }

    def wait_progress(self, probe: Any, target: float, timeout: float) -> int:
        return pipeline.wait_for(
            probe, lambda n: n >= target, timeout, interval=0.1, alive=self.alive
        )

    def wait_moving(self, probe: Any, beyond: int, since: float, timeout: float) -> float:
        """Seconds from ``since`` until ``probe()`` passes ``beyond`` (or all is stored)."""
        total = self.events
        pipeline.wait_for(
            probe,
            lambda n: n > beyond or self.stored() >= total,
            timeout,
            interval=0.1,
            alive=self.alive,
        )
        return time.monotonic() - since

    def finish(
        self,
        drill: str,
        points: list[float],
        resume_s: list[float],
        damage_at: float,
        timeout: float,
        notes: str = "",
    ) -> Result:
        """Wait until PostgreSQL caught up with the oracle, then compare it in full."""
        stall = Stall(self.stored, STALL_S)
        with contextlib.suppress(TimeoutError):  # the comparison says what is missing
            pipeline.wait_for(
                lambda: caught_up(self.expected, self.pg),
                lambda r: r[0] >= r[1] or stall(),
                timeout,
                interval=0.25,
                alive=self.alive,
            )
        recovery = time.monotonic() - damage_at
        diffs = settle(self.expected, self.pg, None, time.monotonic() + 30.0)
        diffs += wait_sanctions(self.expected, self.settings, 30.0)[1]  # the last sanction
        t = tally(self.expected, self.pg.profiles())
        result = Result(
            drill,
            self.events,
            points,
            t.lost,
            t.duplicated,
            len(diffs),
            [round(s, 1) for s in resume_s],
            round(recovery, 1),
            notes,
        )
        RESULTS.append(result)
        assert t.events == self.events
        assert result.passed, f"{result}; first differences: {diffs[:5]}"
        return result

    def close(self) -> None:
        # together (SIGTERM to all, SIGKILL 20 s later), not one after another
        pipeline.stop_all(self.started, timeout=20.0)
        if self._pg is not None:
            self._pg.close()
        if self._admin is not None:
            self._admin.close()


def send(
    rec: Recording, settings: Settings, seconds: float = 0.0, sensors: tuple[str, ...] = ()
) -> tuple[threading.Thread, dict[str, Any]]:
    """Replay ``rec`` in a thread: at once, or spread over about ``seconds``; with
    ``sensors``, only those kinds (``replay --sensor``)."""
    ensure_topics(settings)
    plan = plan_replay(rec, settings, sensors=sensors)
    speed = plan.span_ms / 1000 / seconds if seconds > 0 else 0.0
    parts = {t: m["partitions"] for t, m in rec.topics.items()}
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = replay(plan, settings, speed=speed, recorded_partitions=parts)
        except BaseException as exc:  # reported by the drill, not lost in the thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="replay", daemon=True)
    thread.start()
    return thread, outcome


def sent(thread: threading.Thread, outcome: dict[str, Any], timeout: float) -> ReplaySummary:
    """Wait for a replay thread; its summary, or its error raised here."""
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the replay had not finished after {timeout:.0f}s")
    if "error" in outcome:
        raise outcome["error"]
    summary: ReplaySummary = outcome["summary"]
    return summary
