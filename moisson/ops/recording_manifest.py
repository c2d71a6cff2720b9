"""A recording's manifest, checked field by field before anything trusts it.

The manifest decides which files are read, which topics replay sends to and how
many partitions the topics it creates get, so a stranger's manifest is validated
(pydantic, strict types) and capped: at most :data:`MAX_TOPICS` topics of at most
:data:`MAX_PARTITIONS` partitions, :data:`MAX_MESSAGES` messages, Kafka-legal topic
names, sensor kinds moisson knows, a sha256 per file, :data:`MAX_MANIFEST_BYTES`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from moisson import __version__
from moisson.errors import MoissonError
from schemas.kinds import SENSOR_KINDS

FORMAT = "moisson-recording"
VERSION = 1
KNOWN_VERSIONS = (1,)

MAX_MANIFEST_BYTES = 1 << 20
"""Largest manifest.json, in bytes."""
MAX_TOPICS = 64
"""Most topics one recording may hold."""
MAX_MESSAGES = 2_000_000
"""Most messages one recording may hold: replay, verify and what-if hold them all in
memory (about 500 bytes each) to order them by time."""
MAX_PARTITIONS = 64
"""Most partitions a recorded topic may declare: replay creates missing topics with as
many (and ``replay --partitions N`` re-partitions by key instead)."""
MAX_TIMESTAMP = 253_402_300_799_999
"""The last millisecond of year 9999: a later message timestamp is refused."""

#: A Kafka topic name: what replay may create or send to.
TopicName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]


class ManifestError(MoissonError, ValueError):
    """A manifest field that is missing, mistyped or past a cap, with the fix."""


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class TopicEntry(_Model):
    file: str = Field(min_length=1, max_length=255)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    partitions: int = Field(ge=1, le=MAX_PARTITIONS)
    count: int = Field(ge=0, le=MAX_MESSAGES)
    kind: str | None = None


class Manifest(_Model):
    format: str
    version: int
    source: str
    count: int = Field(ge=0, le=MAX_MESSAGES)
    topics: dict[TopicName, TopicEntry] = Field(max_length=MAX_TOPICS)


def checked(raw: Any) -> dict[str, Any]:
    """``raw`` (the parsed JSON) when it is a manifest moisson can trust, else ManifestError."""
    fix = "correct the manifest, or record or simulate the recording again; nothing was sent"
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ManifestError(f"not a {FORMAT} manifest", fix)
    version = raw.get("version")
    if version not in KNOWN_VERSIONS:
        raise ManifestError(
            f"manifest version {version!r} is unknown to moisson {__version__} "
            f"(it reads versions {', '.join(map(str, KNOWN_VERSIONS))})",
            "upgrade moisson, or record or simulate the recording again",
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["loc"][-1] == "partitions":
            fix = (
                f"a recorded topic may declare at most {MAX_PARTITIONS} partitions; correct "
                "the manifest (replay --partitions N re-partitions by key); nothing was sent"
            )
        raise ManifestError(f"manifest field {where}: {first['msg']}", fix) from None
    if sum(t.count for t in manifest.topics.values()) > MAX_MESSAGES:
        raise ManifestError(f"more than {MAX_MESSAGES:,} messages in all", fix)
    for topic, entry in manifest.topics.items():
        if entry.kind is not None and entry.kind not in SENSOR_KINDS:
            raise ManifestError(
                f"topic {topic}: kind {entry.kind!r} is not a sensor kind "
                f"({', '.join(SENSOR_KINDS)})",
                fix,
            )
    return raw
