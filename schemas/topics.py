"""Topic names, from a prefix, with their compaction policy: the one home of both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.kinds import SENSOR_KINDS

DAY_MS = 24 * 3600 * 1000
MIB = 1024 * 1024
# A compacted topic is read whole by whoever restores from it (a worker without local
# state reads the doubles and positions changelogs). Kafka compacts closed segments
# only, and by default closes one after a week or 1 GiB: nothing would be compacted for
# days, and a restore would read every version ever written. An hour or 64 MiB bounds
# the uncompacted head; a quarter of dirty records is enough for the cleaner to run.
COMPACT_SEGMENT_MS = 3600 * 1000
COMPACT_SEGMENT_BYTES = 64 * MIB
# Dead letters are kept for someone to look into, and no longer: a month, and at most
# 256 MiB per partition, so that a flood of refused messages cannot fill the disk.
DEAD_LETTER_RETENTION_MS = 30 * DAY_MS
DEAD_LETTER_RETENTION_BYTES = 256 * MIB


def dead_letter_configs(retention_ms: int, retention_bytes: int) -> dict[str, str]:
    """A dead-letter topic's configs: deleted past ``retention_ms`` or past
    ``retention_bytes`` per partition, whichever comes first.

    Kafka deletes whole closed segments only, so each segment holds a quarter of either
    bound: the oldest letters go within a quarter past the bound (and the broker's
    retention check, every five minutes by default), not at 1 GiB or after a week.
    """
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(retention_ms),
        "retention.bytes": str(retention_bytes),
        "segment.ms": str(max(1, retention_ms // 4)),
        "segment.bytes": str(max(MIB, retention_bytes // 4)),
    }


def compacted_configs(segment_ms: int, segment_bytes: int) -> dict[str, str]:
    """A compacted topic's configs: the latest value per key, cleaned within about
    ``segment_ms`` of a write or ``segment_bytes`` of writes; a deletion (tombstone) is
    kept a day, so that a worker restarting within a day from its local state sees it."""
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(segment_ms),
        "segment.bytes": str(segment_bytes),
        "min.cleanable.dirty.ratio": "0.25",
        "delete.retention.ms": str(DAY_MS),
    }


#: The processor's table of where each sensor partition stands (faust names its changelog).
POSITIONS_TABLE = "positions"


def changelog(app_id: str, table: str) -> str:
    """The changelog faust keeps for the processor's ``table`` (the positions table's;
    the doubles table's changelog is the ``doubles`` topic)."""
    return f"{app_id}-{table}-changelog"


def positions_changelog(app_id: str) -> str:
    """The positions table's changelog, which faust creates and ``moisson topics`` fixes."""
    return changelog(app_id, POSITIONS_TABLE)


@dataclass(frozen=True)
class TopicSpec:
    """A topic moisson creates and the configs it wants on it (compaction, a dead-letter
    topic's retention); none: the broker's defaults."""

    name: str
    configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def compacted(self) -> bool:
        return self.configs.get("cleanup.policy") == "compact"


@dataclass(frozen=True)
class Topics:
    """Every topic name of one pipeline; ``prefix`` runs one beside another."""

    prefix: str = ""
    dead_letter_retention_ms: int = DEAD_LETTER_RETENTION_MS
    dead_letter_retention_bytes: int = DEAD_LETTER_RETENTION_BYTES
    compact_segment_ms: int = COMPACT_SEGMENT_MS
    compact_segment_bytes: int = COMPACT_SEGMENT_BYTES

    def sensor(self, kind: str) -> str:
        return f"{self.prefix}sensors.{kind}"

    @property
    def sensors(self) -> list[str]:
        return [self.sensor(k) for k in SENSOR_KINDS]

    @property
    def kind_of(self) -> dict[str, str]:
        """Sensor topic → kind."""
        return {self.sensor(k): k for k in SENSOR_KINDS}

    @property
    def doubles(self) -> str:
        """The processor's table changelog: the latest double per citizen (compacted)."""
        return f"{self.prefix}doubles"

    @property
    def sanctions(self) -> str:
        """The latest sanction per citizen (compacted), which the sensors obey."""
        return f"{self.prefix}sanctions"

    @property
    def ledger(self) -> str:
        """Every score change, appended once per (event, rule), keyed by citizen."""
        return f"{self.prefix}ledger"

    @property
    def blacklist(self) -> str:
        """The latest state of each blacklist period (compacted), keyed citizen/entered_at."""
        return f"{self.prefix}blacklist"

    @property
    def dlq(self) -> str:
        """Dead letters: sensor messages the processor could not apply, with the reason."""
        return f"{self.prefix}sensors.dlq"

    @property
    def sink_dlq(self) -> str:
        """Sink dead letters: records of the processor's outputs PostgreSQL would refuse
        (or did), with the reason; the sink commits past them."""
        return f"{self.prefix}sink.dlq"

    @property
    def dead_letters(self) -> dict[str, str]:
        """The configs every dead-letter topic is created with (not the broker's default
        retention, a week, unbounded in bytes)."""
        return dead_letter_configs(self.dead_letter_retention_ms, self.dead_letter_retention_bytes)

    @property
    def compacted(self) -> dict[str, str]:
        """The configs of every compacted topic (the doubles, positions, sanctions and
        blacklist)."""
        return compacted_configs(self.compact_segment_ms, self.compact_segment_bytes)

    def specs(self) -> list[TopicSpec]:
        """The topics moisson creates (faust creates only its own internal ones)."""
        return [
            *(TopicSpec(name) for name in self.sensors),
            TopicSpec(self.doubles, self.compacted),
            TopicSpec(self.sanctions, self.compacted),
            TopicSpec(self.ledger),
            TopicSpec(self.blacklist, self.compacted),
            TopicSpec(self.dlq, self.dead_letters),
            TopicSpec(self.sink_dlq, self.dead_letters),
        ]
