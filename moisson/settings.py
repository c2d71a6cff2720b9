"""The one settings object. Every value comes from the environment or its default.

Env names are ``<SECTION>_<FIELD>``: ``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``,
``TOPICS_PREFIX``, ``PROCESSOR_APP_ID``… The defaults match ``docker-compose.yml``
as seen from the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.kinds import SENSOR_KINDS
from schemas.topics import (
    COMPACT_SEGMENT_BYTES,
    COMPACT_SEGMENT_MS,
    DAY_MS,
    DEAD_LETTER_RETENTION_BYTES,
    DEAD_LETTER_RETENTION_MS,
    MIB,
    Topics,
)

__all__ = ["SENSOR_KINDS", "Settings"]  # SENSOR_KINDS: re-exported from schemas.kinds


class Section(BaseModel):
    """One section of the settings (``KAFKA_*``, ``TOPICS_*``…): frozen, like the whole;
    a variant is a copy (:meth:`Settings.replace`)."""

    model_config = ConfigDict(frozen=True)


class KafkaSettings(Section):
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]"
    )
    partitions: int = Field(4, ge=1, description="Partitions of every moisson topic")
    replication_factor: int = Field(1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the brokers"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism, with a SASL_* security protocol"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers (TLS)")

    def client_kwargs(self) -> dict[str, Any]:
        """Connection arguments for every kafka-python client (producer, consumer, admin)."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        if self.security_protocol != "PLAINTEXT":
            kw["security_protocol"] = self.security_protocol
        if self.security_protocol.startswith("SASL"):
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.ssl_cafile is not None:
            kw["ssl_cafile"] = str(self.ssl_cafile)
        return kw


class TopicSettings(Section):
    """The topics' prefix; the names and compaction policy live in :mod:`schemas.topics`."""

    prefix: str = Field("", description="Prepended to every topic name (fresh topics per test)")
    dlq_retention_days: float = Field(
        DEAD_LETTER_RETENTION_MS / DAY_MS,
        gt=0,
        description="Dead letters are deleted after this many days (set on the dead-letter "
        "topic when moisson creates it)",
    )
    dlq_retention_bytes: int = Field(
        DEAD_LETTER_RETENTION_BYTES,
        ge=4 * MIB,
        description="...or once a partition of the dead-letter topic holds this many bytes",
    )
    compact_segment_s: float = Field(
        COMPACT_SEGMENT_MS / 1000,
        gt=0,
        description="Compacted topics (doubles, positions, sanctions, blacklist) close a "
        "segment after this many seconds, so Kafka compacts it: a restore reads about "
        "the live state, not every version",
    )
    compact_segment_bytes: int = Field(
        COMPACT_SEGMENT_BYTES,
        ge=MIB,
        description="...or after this many bytes",
    )

    @property
    def names(self) -> Topics:
        return Topics(
            self.prefix,
            dead_letter_retention_ms=round(self.dlq_retention_days * DAY_MS),
            dead_letter_retention_bytes=self.dlq_retention_bytes,
            compact_segment_ms=max(1, round(self.compact_segment_s * 1000)),
            compact_segment_bytes=self.compact_segment_bytes,
        )

    def sensor(self, kind: str) -> str:
        return self.names.sensor(kind)

    @property
    def sensors(self) -> list[str]:
        return self.names.sensors

    @property
    def kind_of(self) -> dict[str, str]:
        return self.names.kind_of

    @property
    def doubles(self) -> str:
        return self.names.doubles

    @property
    def sanctions(self) -> str:
        return self.names.sanctions

    @property
    def ledger(self) -> str:
        return self.names.ledger

    @property
    def blacklist(self) -> str:
        return self.names.blacklist

    @property
    def dlq(self) -> str:
        return self.names.dlq


class RegistrySettings(Section):
    url: str | None = Field(
        None,
        description="Confluent-compatible schema registry; set, producers write its wire format",
    )
    username: str | None = None
    password: SecretStr | None = None
    lookup_timeout_s: float = Field(
        3.0,
        gt=0,
        description="Longest wait of a processor batch for the registry's schema lookups;"
        " what is not resolved by then waits and is retried",
    )


def check_database_url(url: str) -> None:
    """Raise ValueError unless ``url`` is a PostgreSQL URL SQLAlchemy can parse.

    The message never quotes the URL: a password with an unescaped ``@``, ``:`` or ``/``
    would otherwise show its tail as the host, the port or the database name.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a "port" that is no number
        raise ValueError(
            f"not a URL; expected postgresql://user:password@host:port/name ({UNESCAPED})"
        ) from None
    if parsed.drivername.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"a {parsed.drivername}:// URL; moisson needs postgresql://")
    after_the_password = [parsed.host or "", parsed.database or ""]
    for value in parsed.query.values():
        after_the_password.extend([value] if isinstance(value, str) else value)
    if any("@" in part for part in after_the_password):
        raise ValueError(f"a URL with two @ signs ({UNESCAPED})")


UNESCAPED = (
    "percent-encode an @ : / % or # in the user or password, e.g. @ as %40, "
    "or set DATABASE_USER and DATABASE_PASSWORD instead of DATABASE_URL"
)


class DatabaseSettings(Section):
    url: SecretStr | None = Field(None, description="SQLAlchemy URL; overrides the parts below")
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "moisson"
    password: SecretStr = SecretStr("moisson-dev-only")
    name: str = "moisson"
    schema_name: str = Field("public", description="PostgreSQL schema of moisson's tables")

    @field_validator("url")
    @classmethod
    def _a_postgres_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            check_database_url(url.get_secret_value())
        return url

    def sqlalchemy_url(self) -> str:
        """``url`` as given, else one SQLAlchemy builds from the parts, percent-encoding
        whatever the user and password hold (``@ : / % #``). A host that is a directory
        is a Unix socket's, which libpq takes as the ``host`` parameter."""
        if self.url is not None:
            return self.url.get_secret_value()
        from sqlalchemy.engine import URL

        socket = self.host.startswith("/")
        url = URL.create(
            "postgresql",
            username=self.user,
            password=self.password.get_secret_value(),
            host=None if socket else self.host,
            port=self.port,
            database=self.name,
            query={"host": self.host} if socket else {},
        )
        return url.render_as_string(hide_password=False)


class ProcessorSettings(Section):
    app_id: str = Field("moisson", description="faust app id: consumer group and changelog names")
    rules_path: Path | None = Field(
        None, description="A scoring rules TOML replacing the shipped one"
    )
    data_dir: Path = Field(
        Path(".moisson/faust"),
        description="faust's local state directory (one per worker on a host: RocksDB "
        "locks what it opens)",
    )
    rebalance_timeout_s: float = Field(
        5.0, description="faust broker_rebalance_timeout; low for the embedded broker"
    )
    session_timeout_s: float = Field(
        10.0, description="faust broker_session_timeout; Tansu holds a group join this long"
    )
    harvest_kinds: str = Field(
        "", description="Minimisation: comma-separated sensor kinds to harvest (empty: all)"
    )
    pseudonymise_key: SecretStr | None = Field(
        None, description="Pseudonymisation: hash citizen ids with this key before scoring"
    )
    max_message_bytes: int = Field(
        65536, ge=64, description="Sensor messages larger than this go to the dead-letter topic"
    )
    max_key_bytes: int = Field(
        256,
        ge=16,
        le=256,
        description="Longest citizen or event id, station, title, category, place or "
        "companion (bytes of UTF-8; the sink indexes ids up to 256); longer: dead letter "
        "key-too-long",
    )
    max_keys: int = Field(
        128,
        ge=8,
        description="Distinct keys in each map of a double (places, purchases, books, "
        "sightings, associates); one more: dead letter too-many-keys",
    )
    max_burst_events: int = Field(
        1000,
        ge=10,
        description="Events of one citizen a double may hold within the 7 days before an "
        "event; one more: dead letter citizen-burst",
    )
    max_double_bytes: int = Field(
        786432,
        ge=65536,
        description="Largest encoded double (under the broker's 1 MiB message limit); the "
        "events that would pass it: dead letter state-too-large",
    )
    check_partition: bool = Field(
        True,
        description="Dead-letter a sensor message that is not on its key's partition under "
        "Kafka's default (murmur2) partitioner as wrong-partition",
    )
    standby_replicas: int = Field(
        0,
        ge=0,
        description="faust standby replicas: other workers keep a warm copy of each "
        "table partition, so a failover reads only the changelog's tail",
    )
    instance_id: str = Field(
        "",
        description="Static group membership (Kafka's group.instance.id), unique per "
        "worker: a worker restarted under the same id within the session timeout takes "
        "its partitions back without a rebalance; empty: dynamic membership",
    )
    web_port: int = Field(6066, description="faust's web port")
    web_enabled: bool = False
    batch_size: int = Field(
        1000,
        ge=1,
        description="Most events the harvester folds per batch (one write per citizen)",
    )
    batch_within_s: float = Field(
        0.05, gt=0, description="Longest wait to fill a batch: bounds the added latency"
    )
    seek_every_s: float = Field(
        1.0, gt=0, description="Least time between two seeks back to one partition's position"
    )
    stall_s: float = Field(
        15.0,
        gt=0,
        description="A partition below its high-water with nothing delivered or applied "
        "this long is sought back to its position",
    )
    gap_seeks: int = Field(
        5,
        ge=1,
        description="Seeks at one offset gap before its range is dead-lettered as missing",
    )
    lateness_s: float | None = Field(
        None,
        ge=0,
        description="Allowed lateness: an event this far behind the latest event time of "
        "its partition is dead-lettered as too-late (default: the rules' longest "
        "correlation window)",
    )
    fault: Literal["", "exit-before-sanction"] = Field(
        "", description="Test only: make the worker exit at a chosen point (crash drills)"
    )
    fetch_max_wait_ms: int = Field(
        1500,
        ge=1,
        le=60_000,
        description="Longest a fetch of the sensor topics waits at the broker when nothing is "
        "new (faust's 1500). A broker that answers only when the wait ends (the embedded "
        "Tansu) adds up to this to each event's latency: the classroom sets 100",
    )
    producer_linger_s: float = Field(
        0.02, ge=0, description="faust producer linger: fills batches of doubles and changelog"
    )
    producer_batch_bytes: int = Field(
        524288, ge=16384, description="faust producer batch size (a double is a few KiB)"
    )
    store: str = Field(
        "rocksdb://",
        description="faust table store: rocksdb:// keeps the state in PROCESSOR_DATA_DIR, "
        "so a restart reads only the changelog's tail; memory:// re-reads the whole "
        "changelog on every start",
    )


class SinkSettings(Section):
    group_id: str = Field("moisson-sink", description="Kafka consumer group of the Postgres sink")
    batch_size: int = Field(500, ge=1)
    poll_timeout_ms: int = 500
    retry_max_s: float = Field(
        30.0, gt=0, description="Longest pause between retries while PostgreSQL is unreachable"
    )


class SensorSettings(Section):
    seed: int = 42
    citizens: int = Field(1000, ge=1)


class MetricsSettings(Section):
    """Prometheus ``/metrics`` endpoints (names: README, Metrics; :mod:`moisson.metrics`)."""

    enabled: bool = Field(True, description="Serve Prometheus metrics from each service")
    host: str = Field("127.0.0.1", description="Address the metrics endpoints listen on")
    processor_port: int = Field(
        9101, ge=0, le=65535, description="The faust worker's metrics port (0: any free, logged)"
    )
    sink_port: int = Field(
        9102, ge=0, le=65535, description="The sink's metrics port (0: any free, logged)"
    )
    sensors_port: int = Field(
        9103, ge=0, le=65535, description="The sensors' metrics port (0: any free, logged)"
    )
    faust_monitor: bool = Field(
        False, description="Also export faust's own monitor (moisson_faust_*; costs per event)"
    )


class DashboardSettings(Section):
    """The dashboard's bounds (README: Bad input, bounds and security)."""

    allowed_hosts: str = Field(
        "",
        description="Comma-separated Host names the dashboard answers besides 127.0.0.1, "
        "localhost, [::1] and its --host (any other Host gets 421)",
    )
    max_stream_clients: int = Field(
        300, ge=1, description="Live-stream (SSE) clients at once; the next one gets 503"
    )
    events_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="Memory the What if tail of decoded events may take; the oldest go first",
    )


class StackSettings(Section):
    broker: Literal["auto", "apache", "embedded"] = Field(
        "auto",
        description="Which Kafka the local stack starts: Apache Kafka needs Java 17+ and Maven",
    )
    brokers: int = Field(
        1,
        ge=1,
        le=5,
        description="Apache Kafka nodes `stack up` starts (3: a KRaft quorum, RF 3, min ISR 2)",
    )
    kafka_version: str = "4.4.0"
    home: Path = Field(Path(".moisson/stack"), description="State of `moisson stack up`")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "moisson", description="Downloaded Kafka classpaths, per version"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=None,
        extra="ignore",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    registry: RegistrySettings = RegistrySettings()
    database: DatabaseSettings = DatabaseSettings()
    processor: ProcessorSettings = ProcessorSettings()
    sink: SinkSettings = SinkSettings()
    sensors: SensorSettings = SensorSettings()
    metrics: MetricsSettings = MetricsSettings()
    dashboard: DashboardSettings = DashboardSettings()
    stack: StackSettings = StackSettings()

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some fields of some sections replaced; the settings are frozen, so
        this is how a variant is made: ``s.replace(kafka={"partitions": 8}, topics={"prefix":
        "t."})``. A field given counts as configured (``kafka_given``), as from the
        environment. Like ``model_copy``, it does not validate: give each field a value
        of its type. An unknown section or field is a TypeError."""
        update: dict[str, Section] = {}
        for name, fields in sections.items():
            if name not in type(self).model_fields:
                raise TypeError(f"Settings has no section {name!r}")
            section: Section = getattr(self, name)
            unknown = set(fields) - set(type(section).model_fields)
            if unknown:
                raise TypeError(f"Settings.{name} has no field {', '.join(sorted(unknown))}")
            update[name] = section.model_copy(update=dict(fields))
        return self.model_copy(update=update)

    @property
    def kafka_given(self) -> bool:
        """Whether a Kafka address was configured (else the local stack may start one)."""
        return "bootstrap_servers" in self.kafka.model_fields_set

    @property
    def database_given(self) -> bool:
        """Whether a database was configured (else the local stack may start one)."""
        return bool({"url", "host"} & self.database.model_fields_set)


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as environment variables, to hand them to a child process."""
    env: dict[str, str] = {}
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        for field_name in type(section).model_fields:
            value = getattr(section, field_name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"{section_name}_{field_name}".upper()] = str(value)
    return env
