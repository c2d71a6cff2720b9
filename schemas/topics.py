"""Topic names, from a prefix, with their compaction policy: the one home of both."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.kinds import SENSOR_KINDS

COMPACTED = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic moisson creates, and whether Kafka compacts it (latest value per key)."""

    name: str
    compacted: bool = False

    @property
    def configs(self) -> dict[str, str]:
        return dict(COMPACTED) if self.compacted else {}


@dataclass(frozen=True)
class Topics:
    """Every topic name of one pipeline; ``prefix`` runs one beside another."""

    prefix: str = ""

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

    def specs(self) -> list[TopicSpec]:
        """The topics moisson creates (faust creates only its own internal ones)."""
        return [
            *(TopicSpec(name) for name in self.sensors),
            TopicSpec(self.doubles, compacted=True),
            TopicSpec(self.sanctions, compacted=True),
            TopicSpec(self.ledger),
            TopicSpec(self.blacklist, compacted=True),
            TopicSpec(self.dlq),
            TopicSpec(self.sink_dlq),
        ]
