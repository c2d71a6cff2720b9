"""What the service parts measure with: pre-loading topics, end offsets, a consumer
group's commit progress, distinct keys, and the CPU and memory of child processes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import say

if TYPE_CHECKING:
    from moisson.settings import Settings


def city_events(n: int, citizens: int = 10_000, seed: int = 7) -> list[Any]:
    """``n`` events of a seeded simulated city."""
    from producers.city import generate_events

    return list(generate_events(seed, citizens, count=n))


def raw_producer(s: Settings) -> Any:
    """A kafka-python producer with the sensors' tuned settings."""
    from producers.publisher import make_producer

    return make_producer(s)


def preload(s: Settings, payloads: Iterable[tuple[str, bytes, bytes]]) -> float:
    """Send (topic, key, value) with the tuned producer; return the seconds it took."""
    from producers.publisher import ensure_topics

    ensure_topics(s)
    producer = raw_producer(s)
    started = time.perf_counter()
    for topic, key, value in payloads:
        producer.send(topic, key=key, value=value)
    producer.flush()
    took = time.perf_counter() - started
    producer.close()
    return took


def end_offsets(s: Settings, topics: list[str]) -> dict[Any, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**s.kafka.client_kwargs())
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
        ]
        return dict(consumer.end_offsets(parts))
    finally:
        consumer.close()


class CommitWatch:
    """Follows a consumer group's committed offsets on the sensor topics."""

    def __init__(self, s: Settings, group: str, ends: dict[Any, int]) -> None:
        from kafka import KafkaAdminClient

        self.admin = KafkaAdminClient(**s.kafka.client_kwargs())
        self.group, self.ends = group, ends
        self.total = sum(ends.values())
        self.cpu_seconds = 0.0

    def committed(self) -> int:
        from kafka.errors import KafkaError

        try:
            got = self.admin.list_group_offsets(self.group).get(self.group, {})
        except KafkaError:  # the group may not exist yet
            return 0
        return sum(max(0, got[tp].offset) for tp in self.ends if tp in got)

    def rate(
        self,
        timeout: float,
        alive: Callable[[], str | None] = lambda: None,
        pids: tuple[int, ...] = (),
    ) -> tuple[float, float, int]:
        """(events/s, seconds, events) between the first commit and the last one.

        Both ends are commits, so startup and the final commit interval do not count
        and the same rule applies to every framework measured this way. The CPU seconds
        ``pids`` spent in between land in ``self.cpu_seconds`` (the machine is shared).
        """
        first: tuple[float, int] | None = None
        cpu0 = 0.0
        last_n, last_change = -1, time.monotonic()
        deadline = time.monotonic() + timeout
        last_print = 0.0
        while True:
            n = self.committed()
            now = time.monotonic()
            if n > 0 and first is None:
                first = (now, n)
                cpu0 = cpu_seconds(pids)
            if n >= self.total:
                self.cpu_seconds = cpu_seconds(pids) - cpu0
                break
            problem = alive()
            if problem:
                raise RuntimeError(problem)
            if n != last_n:
                last_n, last_change = n, now
            if now > deadline or now - last_change > 90:
                raise TimeoutError(
                    f"{self.group}: {n:,}/{self.total:,} committed, no progress for"
                    f" {now - last_change:.0f}s (every event must be committed)"
                )
            if now - last_print > 10:
                say(f"  {self.group}: {n:,}/{self.total:,} committed")
                last_print = now
            time.sleep(0.2)
        assert first is not None
        seconds = max(now - first[0], 1e-9)
        events = self.total - first[1]
        if events <= 0:  # everything landed in one commit: fall back to the whole span
            events, seconds = self.total, seconds
        return events / seconds, seconds, events

    def close(self) -> None:
        self.admin.close()


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User + system CPU seconds of ``pids`` and their children so far."""
    import psutil

    total = 0.0
    for pid in pids:
        proc = psutil.Process(pid)
        for p in (proc, *proc.children(recursive=True)):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def distinct_keys(s: Settings, topic: str) -> int:
    """How many distinct keys ``topic`` holds (read from the start)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**s.kafka.client_kwargs(), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        consumer.seek_to_beginning()
        keys: set[bytes] = set()
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for records in consumer.poll(timeout_ms=500).values():
                keys.update(r.key for r in records)
        return len(keys)
    finally:
        consumer.close()


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children, in bytes."""
    import psutil

    proc = psutil.Process(pid)
    return int(proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(True)))


def alive_check(
    procs: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path]
) -> Callable[[], str | None]:
    """A check that names the first of ``procs`` that exited, with its log's tail."""

    def alive() -> str | None:
        for name, proc in procs.items():
            if proc.poll() is not None:
                tail = logs[name].read_text(errors="replace")[-2000:]
                return f"{name} exited with {proc.returncode}:\n{tail}"
        return None

    return alive
