"""Record Kafka topics into a recording, and replay a recording into Kafka."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moisson.errors import MoissonError
from moisson.ops.recording import Message, Recording, RecordingWriter
from moisson.settings import Settings
from moisson.stopping import CLOSE_S


def sensor_kinds(settings: Settings) -> dict[str, str]:
    """Sensor topic name → sensor kind, for the configured topic names."""
    return settings.topics.kind_of


# --- record ---------------------------------------------------------------------------


def record(
    settings: Settings,
    out: Path,
    topics: list[str],
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    until_idle: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Consume ``topics`` from the start (or ``from_ms``) into a recording at ``out``.

    Stops after ``until_idle`` seconds without a message, when every partition has
    passed ``to_ms``, or when ``should_stop()`` says so (Ctrl-C); the files are
    always closed and the manifest written, so the recording is valid.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **settings.kafka.client_kwargs(),
        enable_auto_commit=False,
        group_id=None,
    )
    try:
        parts: list[TopicPartition] = []
        counts: dict[str, int] = {}
        for topic in topics:
            found = consumer.partitions_for_topic(topic)
            if not found:
                raise ValueError(
                    f"topic {topic!r} does not exist on {settings.kafka.bootstrap_servers}"
                )
            counts[topic] = len(found)
            parts += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(parts)
        if from_ms is None:
            consumer.seek_to_beginning()
        else:
            found_offsets = consumer.offsets_for_times({tp: from_ms for tp in parts})
            for tp in parts:
                at = found_offsets.get(tp)
                if at is None:
                    consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, at.offset)
        kinds = {t: k for t, k in sensor_kinds(settings).items() if t in counts}
        writer = RecordingWriter(
            out,
            counts,
            kinds=kinds,
            source="record",
            extra={"bootstrap": settings.kafka.bootstrap_servers},
        )
        done: set[TopicPartition] = set()
        last_message = time.monotonic()
        try:
            while not should_stop():
                polled = consumer.poll(timeout_ms=200)
                n = 0
                for tp, records in polled.items():
                    for r in records:
                        if to_ms is not None and r.timestamp > to_ms:
                            done.add(tp)
                            continue
                        headers = tuple((k, v) for k, v in (r.headers or []))
                        writer.write(
                            Message(
                                r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, headers
                            )
                        )
                        n += 1
                if n:
                    last_message = time.monotonic()
                    if progress is not None:
                        progress(n)
                if to_ms is not None and done >= set(parts):
                    break
                if until_idle is not None and time.monotonic() - last_message >= until_idle:
                    break
        finally:
            manifest = writer.close()
    finally:
        consumer.close(timeout_ms=int(CLOSE_S * 1000))
    return manifest


# --- replay ---------------------------------------------------------------------------


@dataclass
class ReplayPlan:
    """What a replay sends: messages in order and where each goes."""

    items: list[tuple[Message, str]]
    span_ms: int
    skipped: int = 0


#: Largest message replay sends (key, value and headers): below kafka-python's default
#: max_request_size (1 MiB), which would refuse it mid-replay, after others were sent.
MAX_SEND_BYTES = 1_000_000


class Refused(MoissonError, ValueError):
    """A replay that must not start, said in one line, with the fix."""

    fix: str


def destinations(
    rec: Recording,
    settings: Settings,
    topic_map: dict[str, str],
    sensors: Collection[str] = (),
) -> dict[str, str]:
    """Recorded topic → the topic replay sends it to, always under TOPICS_PREFIX.

    A sensor topic goes to the configured topic of its kind; any other topic (a
    recorded ``sanctions`` or ``doubles``) only where ``topic_map`` names, so a
    recording cannot write into a pipeline's own topics by naming them. Topics that
    ``sensors`` filters out go nowhere.
    """
    unknown = set(topic_map) - set(rec.topics)
    if unknown:
        raise Refused(
            f"--topic-map names topics the recording lacks: {sorted(unknown)}",
            f"the recording's topics are {', '.join(sorted(rec.topics))}",
        )
    prefix = settings.topics.prefix
    out: dict[str, str] = {}
    for topic in rec.topics:
        kind = rec.kind_of(topic)
        if topic in topic_map:
            out[topic] = prefix + topic_map[topic]
        elif kind is not None:
            out[topic] = settings.topics.sensor(kind)
        elif not sensors:
            raise Refused(
                f"the recording holds {topic!r}, which is not a sensor topic; replay "
                "sends such a topic only where --topic-map says",
                f"add --topic-map {topic}=NEW (sent to TOPICS_PREFIX + NEW), or --sensor "
                "KIND to replay only sensor topics; nothing was sent",
            )
    for topic, dest in [*topic_map.items(), *out.items()]:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", dest):
            raise Refused(
                f"{dest!r} (for {topic}) is not a Kafka topic name",
                "a topic name has 1 to 249 letters, digits, '.', '_' or '-'",
            )
    return out


def plan_replay(
    rec: Recording,
    settings: Settings,
    *,
    citizens: Iterable[str] = (),
    sensors: Iterable[str] = (),
    from_ms: int | None = None,
    to_ms: int | None = None,
    topic_map: dict[str, str] | None = None,
) -> ReplayPlan:
    """Choose and order the messages to send, and name each one's destination topic
    (:func:`destinations`); Refused before anything is sent."""
    wanted_citizens = {c.encode() for c in citizens}
    wanted_kinds = set(sensors)
    dest_of = destinations(rec, settings, topic_map or {}, wanted_kinds)
    items, skipped = [], 0
    for m in rec.all_messages():
        kind = rec.kind_of(m.topic)
        if (
            (wanted_citizens and m.key not in wanted_citizens)
            or (wanted_kinds and kind not in wanted_kinds)
            or (from_ms is not None and m.timestamp < from_ms)
            or (to_ms is not None and m.timestamp > to_ms)
        ):
            skipped += 1
            continue
        size = len(m.key or b"") + len(m.value or b"")
        size += sum(len(k.encode()) + len(v or b"") for k, v in m.headers)
        if size > MAX_SEND_BYTES:
            raise Refused(
                f"message {m.partition}@{m.offset} of {m.topic} is {size:,} bytes, more "
                f"than the {MAX_SEND_BYTES:,} replay sends",
                "leave it out (--from/--to, --citizen, --sensor); nothing was sent",
            )
        items.append((m, dest_of[m.topic]))
    span = (items[-1][0].timestamp - items[0][0].timestamp) if items else 0
    return ReplayPlan(items, span, skipped)


@dataclass
class ReplaySummary:
    sent: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)
    repartitioned: set[str] = field(default_factory=set)
    seconds: float = 0.0
    #: Stopped early (Ctrl-C or a stop signal): only ``sent`` messages went out.
    stopped: bool = False


def schedule(
    plan: ReplayPlan,
    speed: float,
    loops: int,
    shift_to_now: bool,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> Iterator[tuple[float, Message, str, int]]:
    """(seconds after start, message, destination, Kafka timestamp) for every send."""
    if not plan.items:
        return
    first = plan.items[0][0].timestamp
    offset_s = 0.0
    for _ in range(loops):
        shift = (now_ms() - first) if shift_to_now else 0
        for m, dest in plan.items:
            at = offset_s + ((m.timestamp - first) / 1000 / speed if speed > 0 else 0.0)
            yield at, m, dest, m.timestamp + shift
        offset_s += (plan.span_ms / 1000 / speed) if speed > 0 else 0.0


def replay(
    plan: ReplayPlan,
    settings: Settings,
    *,
    speed: float,
    loops: int = 1,
    shift_to_now: bool = False,
    progress: Callable[[int], None] | None = None,
    recorded_partitions: dict[str, int] | None = None,
) -> ReplaySummary:
    """Publish the plan: recorded order, gaps divided by ``speed``, keys and headers kept.

    A message keeps its partition when its destination has the recorded partition
    count; otherwise Kafka's partitioner places it by key. A KeyboardInterrupt (Ctrl-C,
    or a stop signal through :mod:`moisson.stopping`) ends it early, ``stopped`` set.
    """
    from producers.publisher import close_producer, ensure_topics, make_producer

    ensure_topics(settings, extra={d for _, d in plan.items})
    producer = make_producer(settings)
    summary = ReplaySummary()
    recorded_partitions = recorded_partitions or {}
    keep_partition: dict[tuple[str, str], bool] = {}
    started = time.monotonic()
    try:
        for at, m, dest, ts in schedule(plan, speed, loops, shift_to_now):
            delay = started + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            k = (m.topic, dest)
            if k not in keep_partition:
                have = len(producer.partitions_for(dest) or ())
                keep_partition[k] = have == recorded_partitions.get(m.topic, -1)
                if not keep_partition[k]:
                    summary.repartitioned.add(dest)
            producer.send(
                dest,
                key=m.key,
                value=m.value,
                timestamp_ms=ts,
                partition=m.partition if keep_partition[k] else None,
                # kafka-python cannot send a null header value; it goes as empty bytes.
                headers=[(k, v if v is not None else b"") for k, v in m.headers] or None,
            )
            summary.sent += 1
            summary.per_topic[dest] = summary.per_topic.get(dest, 0) + 1
            if progress is not None and summary.sent % 500 == 0:
                progress(500)
        producer.flush()
        if progress is not None:
            progress(summary.sent % 500)
    except KeyboardInterrupt:
        summary.stopped = True
    finally:
        close_producer(producer)
    summary.seconds = time.monotonic() - started
    return summary
