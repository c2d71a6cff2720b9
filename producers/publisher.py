"""Kafka I/O for the sensors: topic creation and keyed, idempotent sends (kafka-python)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from producers.city import SensorEvent
from producers.given import SensorCounts, SensorsConfig, Uncounted
from producers.sanction_book import SanctionBook
from schemas.codec import SANCTION, SENSOR_SCHEMAS, CodecError, decode
from schemas.registry_client import RegistryFramer, SchemaRegistryClient, subject_for
from schemas.topics import positions_changelog

log = logging.getLogger(__name__)

#: Seconds a Kafka client of the sensors gets to close once asked to stop: the value of
#: ``moisson.stopping.CLOSE_S`` (which this package does not import; a test keeps them equal).
CLOSE_S = 1.0


def ensure_topics(settings: SensorsConfig, extra: Iterable[str] = ()) -> list[str]:
    """Create the sensor, doubles, sanctions, ledger and blacklist topics (and ``extra``
    ones) when missing; return those created.

    faust creates only its internal topics, so the source topics are ours to create,
    all with the same partition count as the processor's table.
    """
    wanted = {spec.name: spec.configs for spec in settings.topics.names.specs()}
    for name in extra:
        wanted.setdefault(name, {})
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        existing = set(admin.list_topics())
        missing = {
            name: {
                "num_partitions": settings.kafka.partitions,
                "replication_factor": settings.kafka.replication_factor,
                "configs": configs,
            }
            for name, configs in wanted.items()
            if name not in existing
        }
        if missing:
            admin.create_topics(missing, raise_errors=False, wait_for_metadata=True)
        return sorted(missing)
    finally:
        admin.close()


def wanted_configs(settings: SensorsConfig) -> dict[str, dict[str, str]]:
    """Each topic moisson sets configs on, with them: its own, and the processor's
    positions changelog (which faust creates)."""
    names = settings.topics.names
    wanted = {spec.name: dict(spec.configs) for spec in names.specs() if spec.configs}
    wanted[positions_changelog(settings.processor.app_id)] = names.compacted
    return wanted


def fix_configs(settings: SensorsConfig) -> dict[str, dict[str, str]]:
    """Set, on each existing topic of :func:`wanted_configs`, the configs whose values
    differ (a topic created by an older moisson, or by faust); what was changed, per
    topic. Kafka applies them without a restart; the cleaner then compacts the backlog.
    """
    wanted = wanted_configs(settings)
    admin = KafkaAdminClient(**settings.kafka.client_kwargs())
    try:
        names = sorted(set(wanted) & set(admin.list_topics()))
        if not names:
            return {}
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )["topic"]
        changes = {}
        for name in names:
            have = {k: v["value"] for k, v in described.get(name, {}).items()}
            diff = {k: v for k, v in wanted[name].items() if have.get(k) != v}
            if diff:
                changes[name] = diff
        if changes:
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n, configs=c) for n, c in changes.items()]
            )
        return changes
    finally:
        admin.close()


def make_producer(settings: SensorsConfig) -> KafkaProducer:
    """An idempotent producer (kafka-python 3 defaults: acks=all, idempotence on).

    A 50 ms linger fills batches even when events trickle in across 16 partitions: with
    10 ms nearly every send opened a new batch and woke the sender thread (12% of the
    sensors' time in py-spy). CRC32C comes from the ``crc32c`` extension.
    """
    return KafkaProducer(
        **settings.kafka.client_kwargs(),
        linger_ms=50,
        batch_size=262144,
    )


def close_producer(producer: KafkaProducer, timeout: float = CLOSE_S) -> None:
    """Close ``producer`` within about ``timeout`` seconds: what the broker has not
    acknowledged by then is dropped, with a warning.

    kafka-python 3's ``close`` flushes first and, past its timeout, raises and leaves
    the producer open (its ``__del__`` and exit hook then try again, with a traceback).
    """
    try:
        producer.close(timeout=timeout)
    except KafkaError as exc:
        log.warning("closing the producer: %s; its unsent records are dropped", exc)
        producer._sender.force_close()  # private: the one way to drop unsent batches
        producer.close(timeout=timeout)


class Publisher:
    """Sends sensor events to their topics, keyed by ``citizen_id``.

    Values are Avro single objects, or, in schema registry mode (a ``registry`` client,
    which the entry points build from ``REGISTRY_URL``), the Confluent wire format with
    the schemas registered under ``<topic>-value``.
    """

    def __init__(
        self,
        settings: SensorsConfig,
        producer: KafkaProducer | None = None,
        metrics: SensorCounts | None = None,
        *,
        registry: SchemaRegistryClient | None,
    ) -> None:
        self.settings = settings
        self.framer = _registry_framer(settings, registry)
        self.producer = producer or make_producer(settings)
        self.metrics: SensorCounts = metrics if metrics is not None else Uncounted()
        self.sent = 0
        self.errors: list[KafkaError] = []

    def _on_error(self, kind: str, exc: BaseException) -> None:
        log.error("send failed: %s", exc)
        self.metrics.errors[kind].inc()
        if isinstance(exc, KafkaError):
            self.errors.append(exc)

    def encode(self, event: SensorEvent) -> bytes:
        """The bytes ``event`` travels as, in the configured framing."""
        if self.framer is None:
            return event.encode()
        schema = SENSOR_SCHEMAS[event.kind]
        return self.framer.encode(self.settings.topics.sensor(event.kind), schema, event.record)

    def send(self, event: SensorEvent) -> None:
        self.producer.send(
            self.settings.topics.sensor(event.kind),
            key=event.citizen_id.encode(),
            value=self.encode(event),
        ).add_errback(self._on_error, event.kind)
        self.sent += 1
        self.metrics.sent[event.kind].inc()

    def publish(
        self,
        events: Iterable[SensorEvent],
        progress: Callable[[int], None] | None = None,
        pacer: Pacer | None = None,
        keep: list[SensorEvent] | None = None,
    ) -> int:
        """Send every event, flush, and return how many were sent. Raises if any send failed.

        With ``pacer`` the events follow the simulated clock; ``keep`` collects them.
        """
        n = 0
        for event in events:
            if pacer is not None:
                pacer.wait(event)
            self.send(event)
            if keep is not None:
                keep.append(event)
            n += 1
            if progress is not None and n % 100 == 0:
                progress(100)
        self.producer.flush()
        if progress is not None:
            progress(n % 100)
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} sends failed; first: {self.errors[0]}")
        return n

    def close(self, timeout: float = CLOSE_S) -> None:
        """Close the producer, giving events not yet acknowledged ``timeout`` seconds
        (a broker that is gone would otherwise hold the stop for minutes)."""
        close_producer(self.producer, timeout)


def _registry_framer(
    settings: SensorsConfig, client: SchemaRegistryClient | None
) -> RegistryFramer | None:
    """In registry mode, a framer with every sensor schema registered up front, so an
    unreachable registry fails here, before anything is sent."""
    if client is None:
        return None
    for kind, schema in SENSOR_SCHEMAS.items():
        client.register(subject_for(settings.topics.sensor(kind)), schema)
    return RegistryFramer(client)


class KafkaSanctions:
    """The blacklist as the ``sanctions`` topic tells it, read in a background thread.

    The topic is compacted and keyed by citizen, so reading it from the start gives
    every citizen's latest sanction. Live sensors obey it as sanctions arrive, except a
    stale one: older (lower ``double_version``) than the sanction already held for that
    citizen, as the processor may send after a crash (see ``SanctionBook``).
    """

    def __init__(self, settings: SensorsConfig, fetch_max_wait_ms: int = 500) -> None:
        import threading

        self.settings = settings
        #: How long the broker may hold a fetch with nothing new (kafka-python's 500 by
        #: default): on a broker that answers only when it ends, a sanction's delay.
        self.fetch_max_wait_ms = fetch_max_wait_ms
        #: Called from the reading thread with each citizen who enters or leaves the
        #: blacklist (None: nobody is told).
        self.on_change: Callable[[str], None] | None = None
        self.book = SanctionBook()
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sanctions", daemon=True)

    def start(self) -> KafkaSanctions:
        self._thread.start()
        return self

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        topic = self.settings.topics.sanctions
        consumer = KafkaConsumer(
            **self.settings.kafka.client_kwargs(),
            enable_auto_commit=False,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
            consumer.seek_to_beginning()
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for rec in records:
                        self._take(rec.value)
        finally:
            consumer.close(timeout_ms=int(CLOSE_S * 1000))

    def _take(self, value: bytes) -> None:
        """Apply one sanction read from the topic, unless stale; tell ``on_change``."""
        try:
            _, s = decode(value, SANCTION)
        except CodecError as exc:
            log.warning("ignoring an undecodable sanction: %s", exc)
            return
        self.received += 1
        cid = s["citizen_id"]
        held, was = self.book.held_version(cid), self.book.is_blacklisted(cid)
        if not self.book.apply(s):
            log.debug(
                "ignoring a stale sanction for %s: version %d, holding %s",
                cid,
                s["double_version"],
                held,
            )
        elif self.on_change is not None and was != self.book.is_blacklisted(cid):
            self.on_change(cid)

    @property
    def blacklisted(self) -> set[str]:
        """The citizens blacklisted now (the book's own set: do not modify)."""
        return self.book.blacklisted

    @property
    def stale(self) -> int:
        """Sanctions ignored because a newer one for the same citizen was applied."""
        return self.book.stale

    def is_blacklisted(self, citizen_id: str) -> bool:
        return self.book.is_blacklisted(citizen_id)

    def observe(self, event: SensorEvent) -> None:
        """Live sensors learn only from the topic, not from what they emit."""

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Pacer:
    """Publishes on the simulated clock: ``speed`` simulated seconds per real second,
    and at most ``rate`` events per second (0 disables either limit)."""

    def __init__(self, speed: float, rate: float) -> None:
        import time

        self.speed, self.rate = speed, rate
        self._clock = time.monotonic
        self._sleep = time.sleep
        self._start_real: float | None = None
        self._start_sim = 0
        self._sent = 0

    def wait(self, event: SensorEvent) -> None:
        now = self._clock()
        if self._start_real is None:
            self._start_real, self._start_sim = now, event.occurred_ms
        due = self._start_real
        if self.speed > 0:
            due = max(
                due, self._start_real + (event.occurred_ms - self._start_sim) / 1000 / self.speed
            )
        if self.rate > 0:
            due = max(due, self._start_real + self._sent / self.rate)
        self._sent += 1
        if due > now:
            self._sleep(due - now)


class Nobody:
    """A sanction source that blacklists no one (``moisson sensors --sanctions none``)."""

    def is_blacklisted(self, citizen_id: str) -> bool:
        return False

    def observe(self, event: object) -> None:
        pass
