"""The faust app, built by :func:`create_app` (run by ``faust -A processors.worker worker``
or ``moisson process``); importing this module builds nothing.

It consumes the four sensor topics and keeps one digital double per citizen in a
table whose changelog *is* the compacted ``doubles`` topic (one send per touched
citizen per batch; the sink reads the profile and ignores the horizon). New ledger
entries go to ``ledger``, changed blacklist periods to ``blacklist``, and a sanction
to ``sanctions`` whenever a citizen enters or leaves the blacklist.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.serializers import codecs
from faust.types import TP
from yarl import URL

from moisson.settings import KafkaSettings, Settings
from processors.core.fold import as_datetime
from processors.core.gate import Position, Source
from processors.core.held import ms
from processors.engine.ends import fetched_ends
from processors.engine.faust_patches import (
    PatchedApp,
    PatchedTable,
    ReadOffsets,
    processing,
    set_fetch_wait,
    set_highwaters,
    set_read_offsets,
    set_serializers,
    set_wait_first,
    wait_first_fast,
)
from processors.engine.store import LocalStore, land_when_sent
from schemas.codec import DOUBLE, decode, encode
from schemas.topics import POSITIONS_TABLE, changelog

DOUBLE_CODEC = "moisson_double"


class DoubleCodec(codecs.Codec):
    """Doubles in the table's changelog (the ``doubles`` topic) are Avro single objects."""

    def _dumps(self, obj: Any) -> bytes:
        return encode(DOUBLE, obj)

    def _loads(self, s: bytes) -> Any:
        return decode(s, DOUBLE)[1]


def register_codec() -> None:
    """Register the doubles' codec with faust, once: without it a recovering worker
    cannot decode the ``doubles`` changelog (the table's)."""
    if DOUBLE_CODEC not in codecs.codecs:
        codecs.register(DOUBLE_CODEC, DoubleCodec())


log = logging.getLogger(__name__)


class TrackedTable(PatchedTable):
    """A table whose changelog writes can be awaited until the broker has them.

    faust's own producer flush gives up on its send-soon buffer after 0.1 s without
    progress (``transport/producer.py:78-95``), so it cannot prove a write landed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unsent: set[asyncio.Future[Any]] = set()

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        self.last_sent = self.track(super().send_changelog(*args, **kwargs))
        return self.last_sent

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)  # sends the changelog record, then stores
        self.land_on_ack()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self.land_on_ack()

    @property
    def local_store(self) -> LocalStore | None:
        """The table's store when it is ours (RocksDB), None for faust's memory store."""
        return self.data if isinstance(self.data, LocalStore) else None

    def land_on_ack(self) -> None:
        store = self.local_store
        if store is not None:
            partition, record = store.take_last()
            land_when_sent(store, partition, [record], self.last_sent)

    def new_store(self, url: Any) -> Any:
        # faust's RocksDB store may hold values its changelog never got (:mod:`.store`)
        if URL(str(url)).scheme == "rocksdb":
            return LocalStore(
                url,
                self.app,
                self,
                table_name=self.name,
                key_type=self.key_type,
                key_serializer=self.key_serializer,
                value_serializer=self.value_serializer,
                value_type=self.value_type,
                loop=self.loop,
                options=self.options,
            )
        return None

    def track(self, fut: Any) -> Any:
        """Count ``fut``, a changelog write, as unsent until the broker has it."""
        self.unsent.add(fut)
        fut.add_done_callback(self.unsent.discard)
        return fut


def broker_credentials(kafka: KafkaSettings) -> Any:
    """faust's form of the SASL/TLS settings every kafka-python client also gets."""
    context = None
    if kafka.security_protocol.endswith("SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None


def position_key(src: Source) -> str:
    """The ``positions`` table's key of a source partition: ``topic/partition``."""
    return f"{src[0]}/{src[1]}"


class ProcessorApp(PatchedApp):
    """faust's App, told when a rebalance starts and without read offsets for sensors."""

    #: Bumped as a revocation begins: a batch that awaited across one writes no position.
    revocations: int = 0
    tracked: tuple[TrackedTable, ...] = ()
    unfiltered_topics: frozenset[str] = frozenset()
    #: kafka-python's connection settings: where recovery confirms the changelogs' ends
    client_kwargs: dict[str, Any] = {}  # noqa: RUF012 (set per app by create_app)
    #: The longest a fetch waits at the broker when nothing is new (set by create_app).
    fetch_max_wait_ms: int = 1500
    #: Set by :func:`create_app`: the sensor topics the harvester consumes, and its tables.
    sensor_topics: Any = None
    doubles: TrackedTable
    positions: TrackedTable

    def on_consumer_made(self, consumer: Any) -> None:
        set_read_offsets(consumer, ReadOffsets(self.unfiltered_topics))
        set_wait_first(consumer, wait_first_fast)
        set_fetch_wait(consumer, self.fetch_max_wait_ms)
        set_highwaters(
            consumer, functools.partial(fetched_ends, self.client_kwargs), self.forget_stale
        )

    def forget_stale(self, ends: Any) -> None:
        """Drop local state read from another changelog than the one that ends at
        ``ends`` (see :meth:`processors.engine.store.LocalStore.forget_stale`)."""
        for table in self.tracked:
            if table.local_store is not None:
                table.local_store.forget_stale(ends)

    def stored_position(self, src: Source) -> Position:
        """Where ``src`` stands in the ``positions`` table (offset 0 and no watermark for
        a partition never applied)."""
        held = self.positions.get(position_key(src))
        if not held:
            return Position()
        wm = held.get("wm")
        return Position(int(held["next"]), as_datetime(wm) if wm is not None else None)

    def store_position(self, src: Source, stands: Position, event: Any) -> None:
        """Write where ``src`` stands, in ``event``'s partition (beside its doubles)."""
        wm = stands.watermark
        with processing(event):
            self.positions[position_key(src)] = {
                "next": stands.next,
                "wm": ms(wm) if wm is not None else None,
            }

    def partitions_of(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, from the consumer's metadata (None under
        ``test_context``, or before the metadata is known: the partition goes unchecked)."""
        try:
            return self.consumer.topic_partitions(topic)
        except ConsumerNotStarted:
            return None

    def assigned_sources(self) -> set[Source] | None:
        """The sensor partitions this worker owns; None under ``test_context`` (no
        consumer)."""
        try:
            return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        except ConsumerNotStarted:
            return None

    async def seek(self, src: Source, offset: int) -> None:
        """Seek in the consumer's own thread: faust's ``Consumer.seek`` calls aiokafka
        from this one, which does not wake aiokafka's fetcher (the partition starves)."""
        await self.consumer.seek_wait({TP(*src): offset})

    async def before_revocation(self, revoked: Any) -> None:
        self.revocations += 1
        # Every table write made so far reaches the changelog before the partitions go:
        # a late write would land after the new owner read the changelog, and win.
        unsent = set().union(*(t.unsent for t in self.tracked))
        if unsent:
            _, late = await asyncio.wait(unsent, timeout=self.conf.broker_session_timeout / 2)
            if late:
                log.warning("%d changelog writes unconfirmed at a revocation", len(late))


def raw_topic(app: faust.App, *names: str, **options: Any) -> Any:
    """A topic whose keys and values pass through as bytes (we frame them ourselves)."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        **options,
    )


def tracked_table(
    app: ProcessorApp,
    name: str,
    value_serializer: str,
    compaction: dict[str, str],
    changelog_name: str | None = None,
) -> TrackedTable:
    """A table keyed by raw str, of the tracked kind, with its changelog declared here
    (``{app_id}-{name}-changelog`` unless named) and created, if faust must, with
    ``compaction``'s configs.

    faust derives a table's serializers from model types only (JSON otherwise), so the
    changelog topic is declared explicitly; without it, recovery after a rebalance fails
    to decode the changelog and loses the table.
    """
    partitions = app.conf.topic_partitions
    topic = app.topic(
        changelog_name or changelog(app.conf.id, name),
        key_type=str,
        value_type=None,
        key_serializer="raw",
        value_serializer=value_serializer,
        partitions=partitions,
        compacting=True,
        deleting=False,
        acks=False,
        internal=True,
        config=compaction,
    )
    table = TrackedTable(
        app,
        name=name,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=str,
        changelog_topic=topic,
    )
    # ...and the table writes its changelog with its own serializer attributes.
    set_serializers(table, "raw", value_serializer)
    app.tables.add(table)
    return table


def create_app(settings: Settings) -> ProcessorApp:
    """The harvester's faust app from ``settings``: its sensor topics and its two tables,
    no agent yet (:func:`processors.engine.agent.register` adds them). Registers the doubles'
    codec and creates the data directory."""
    register_codec()
    partitions = settings.kafka.partitions
    datadir = settings.processor.data_dir / settings.processor.app_id
    datadir.mkdir(parents=True, exist_ok=True)  # faust expects it to exist
    app = ProcessorApp(
        settings.processor.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in settings.kafka.bootstrap_servers.split(",")],
        store=settings.processor.store,
        topic_partitions=partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        broker_rebalance_timeout=settings.processor.rebalance_timeout_s,
        broker_session_timeout=settings.processor.session_timeout_s,
        consumer_auto_offset_reset="earliest",
        datadir=str(datadir),
        web_enabled=settings.processor.web_enabled,
        web_port=settings.processor.web_port,
        table_standby_replicas=settings.processor.standby_replicas,
        consumer_group_instance_id=settings.processor.instance_id or None,
        producer_acks=-1,
        producer_linger=settings.processor.producer_linger_s,
        producer_max_batch_size=settings.processor.producer_batch_bytes,
        broker_credentials=broker_credentials(settings.kafka),
    )
    # No acks: faust neither tracks nor commits sensor offsets; the harvester keeps its
    # own positions in the ``positions`` table and commits those (processors/core/planning.py).
    app.client_kwargs = settings.kafka.client_kwargs()
    app.fetch_max_wait_ms = settings.processor.fetch_max_wait_ms
    app.sensor_topics = raw_topic(app, *settings.topics.sensors, partitions=partitions, acks=False)
    app.unfiltered_topics = frozenset(settings.topics.sensors)
    # The compacted doubles topic is the table's changelog: the profile the sink upserts
    # and the bounded state a new owner recovers are one message.
    compaction = settings.topics.names.compacted
    app.doubles = tracked_table(app, "doubles", DOUBLE_CODEC, compaction, settings.topics.doubles)
    # Where each sensor partition stands: "topic/partition" -> {"next": offset to apply,
    # "wm": its watermark in ms}.
    # Co-partitioned with the sensors: a partition's position lives beside its doubles.
    app.positions = tracked_table(app, POSITIONS_TABLE, "json", compaction)
    app.tracked = (app.doubles, app.positions)
    return app
