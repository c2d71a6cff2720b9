"""Recordings: self-contained Avro files of Kafka topics, with a manifest.

A recording is a directory holding ``manifest.json`` and one Avro Object Container
File per topic. Each file record is one Kafka message (topic, partition, offset,
timestamp, key, headers, value). Values stay exactly as they travelled: Avro single
objects, whose writer schemas each file carries in its header metadata, so a
recording can be read without this project's ``.avsc`` files.

Everything a recording holds is deterministic for the same input (the sync markers
are derived, not random; nothing records the wall clock), so ``moisson simulate``
with the same arguments writes the same bytes.

A recording read back is untrusted input: its manifest is checked and capped
(:mod:`moisson.ops.recording_manifest`), and its files are read only from inside its
directory, by a reader with capped decompression (:mod:`moisson.ops.recording_file`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Any

from fastavro.write import Writer

from moisson import __version__
from moisson.errors import MoissonError
from moisson.ops.recording_file import (
    MAX_BLOCK_BYTES,
    MAX_INFLATED_BYTES,
    MESSAGE_SCHEMA,
    SCHEMAS_KEY,
    Budget,
    Corrupt,
    Invalid,
    Outside,
    TooLarge,
    carried,
    check_row,
    open_inside,
    read_container,
)
from moisson.ops.recording_manifest import (
    FORMAT,
    MAX_MANIFEST_BYTES,
    VERSION,
    ManifestError,
    checked,
)
from schemas.codec import HEADER_LEN, MAGIC, registry

MANIFEST = "manifest.json"

FIX = "record or simulate it again; nothing was sent"


class RecordingError(MoissonError):
    """A recording that cannot be used; the message names the file and the reason,
    ``fix`` what to do about it."""

    def __init__(self, message: str, fix: str | None = FIX) -> None:
        # A recording names its own files and topics: no control character of theirs
        # reaches a terminal.
        super().__init__("".join(c if c.isprintable() else ascii(c)[1:-1] for c in message), fix)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: int  # epoch milliseconds
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    def as_record(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": self.key,
            "value": self.value,
            "headers": [{"key": k, "value": v} for k, v in self.headers],
        }


def _sha256(path: Path) -> str:
    with open(path, "rb") as fo:
        return hashlib.file_digest(fo, "sha256").hexdigest()


def file_name(topic: str) -> str:
    return f"{topic}.avro"


def schemas_metadata() -> str:
    """Every writer schema this project knows, by fingerprint, as JSON."""
    return json.dumps(
        {s.fingerprint.hex(): json.loads(_full_schema(s.name)) for s in registry.by_name.values()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _full_schema(name: str) -> str:
    from schemas.codec import SCHEMA_DIR

    for path in sorted(SCHEMA_DIR.glob("*.avsc")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        if f"{raw.get('namespace')}.{raw['name']}" == name:
            return json.dumps(raw, sort_keys=True)
    raise KeyError(name)


@dataclass
class TopicStats:
    partitions: int
    count: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    fingerprints: dict[str, int] = field(default_factory=dict)

    def add(self, m: Message) -> None:
        self.count += 1
        self.first_ts = m.timestamp if self.first_ts is None else min(self.first_ts, m.timestamp)
        self.last_ts = m.timestamp if self.last_ts is None else max(self.last_ts, m.timestamp)
        if m.value is not None and m.value[:2] == MAGIC and len(m.value) >= HEADER_LEN:
            fp = m.value[2:HEADER_LEN].hex()
            self.fingerprints[fp] = self.fingerprints.get(fp, 0) + 1


class RecordingWriter:
    """Writes a recording: one OCF per topic, then the manifest (on ``close``)."""

    def __init__(
        self,
        directory: Path,
        partitions: dict[str, int],
        *,
        kinds: dict[str, str] | None = None,
        source: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        if (self.dir / MANIFEST).exists():
            raise RecordingError(
                f"{self.dir / MANIFEST}: a recording is already there; choose another --out"
            )
        self.kinds = kinds or {}
        self.source = source
        self.extra = extra or {}
        self.stats = {t: TopicStats(partitions=p) for t, p in partitions.items()}
        self._files = {}
        self._writers = {}
        meta = {SCHEMAS_KEY: schemas_metadata(), "moisson.format": f"{FORMAT}/{VERSION}"}
        for topic in partitions:
            fo = open(self.dir / file_name(topic), "wb")  # noqa: SIM115 (closed in close())
            marker = hashlib.sha256(f"{FORMAT}:{topic}".encode()).digest()[:16]
            self._files[topic] = fo
            self._writers[topic] = Writer(
                fo, MESSAGE_SCHEMA, codec="deflate", metadata=meta, sync_marker=marker
            )

    def write(self, m: Message) -> None:
        try:
            writer = self._writers[m.topic]
        except KeyError:
            raise RecordingError(f"topic {m.topic!r} was not declared for this recording") from None
        writer.write(m.as_record())
        self.stats[m.topic].add(m)

    def flush(self) -> None:
        for w in self._writers.values():
            w.flush()

    def close(self) -> dict[str, Any]:
        for topic, w in self._writers.items():
            w.flush()
            self._files[topic].close()
        topics = {}
        fingerprints: dict[str, str] = {}
        for topic, st in self.stats.items():
            path = self.dir / file_name(topic)
            topics[topic] = {
                "file": path.name,
                "sha256": _sha256(path),
                "partitions": st.partitions,
                "count": st.count,
                "first_timestamp": st.first_ts,
                "last_timestamp": st.last_ts,
                "fingerprints": dict(sorted(st.fingerprints.items())),
                "kind": self.kinds.get(topic),
            }
            for fp in st.fingerprints:
                known = registry.by_fingerprint.get(bytes.fromhex(fp))
                fingerprints[fp] = known.name if known else "unknown"
        starts = [s.first_ts for s in self.stats.values() if s.first_ts is not None]
        ends = [s.last_ts for s in self.stats.values() if s.last_ts is not None]
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "tool_version": __version__,
            "source": self.source,
            **self.extra,
            "count": sum(s.count for s in self.stats.values()),
            "time_range": {
                "from": min(starts) if starts else None,
                "to": max(ends) if ends else None,
            },
            "schema_fingerprints": dict(sorted(fingerprints.items())),
            "topics": dict(sorted(topics.items())),
        }
        (self.dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return manifest


@dataclass(frozen=True)
class Recording:
    """A validated recording: its manifest and the files it names."""

    dir: Path
    manifest: dict[str, Any]

    @property
    def topics(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest["topics"])

    def kind_of(self, topic: str) -> str | None:
        return self.topics[topic].get("kind")

    def messages(self, topic: str, budget: Budget | None = None) -> Iterator[Message]:
        """The messages of one topic, in file order, checked as they are read: no more
        than the manifest counts, and no more inflated bytes than ``budget`` allows
        (:mod:`moisson.ops.recording_file` bounds what reading them costs)."""
        meta = self.topics[topic]
        path = self.dir / meta["file"]
        known: set[str] = set()
        fo, size = _open(self.dir, meta["file"], topic)
        try:
            with fo:
                rows = read_container(fo, size, lambda m: known.update(carried(m)), budget)
                for n, row in enumerate(rows, 1):
                    if n > meta["count"]:
                        raise Invalid(f"holds more than the {meta['count']} messages it should")
                    check_row(row, topic, meta["partitions"], known)
                    yield Message(*row)
        except Invalid as exc:
            raise RecordingError(f"{path}: {exc}") from None
        except TooLarge as exc:
            raise RecordingError(
                f"{path}: {exc}; refused as a decompression bomb",
                f"a recording may inflate to {MAX_BLOCK_BYTES >> 20} MiB per block and "
                f"{MAX_INFLATED_BYTES >> 20} MiB in all; nothing was sent",
            ) from None
        except Corrupt as exc:
            raise RecordingError(
                f"{path}: unreadable ({exc}); the file is truncated or corrupt"
            ) from None
        except OSError as exc:
            raise RecordingError(f"{path}: unreadable ({exc.strerror or exc})") from None

    def all_messages(self) -> list[Message]:
        """Every message, in recorded timestamp order (ties: topic, partition, offset)."""
        budget = Budget()
        out = [m for t in self.topics for m in self.messages(t, budget)]
        out.sort(key=lambda m: (m.timestamp, m.topic, m.partition, m.offset))
        return out

    def check(self) -> None:
        """Read every file through once, so corruption is found before anything is sent."""
        budget = Budget()
        for topic, meta in self.topics.items():
            n = sum(1 for _ in self.messages(topic, budget))
            if n != meta["count"]:
                raise RecordingError(
                    f"{self.dir / meta['file']}: holds {n} messages, "
                    f"the manifest says {meta['count']}"
                )


def _open(directory: Path, name: str, what: str) -> tuple[BufferedReader, int]:
    """``name`` opened by :func:`open_inside`, its refusals as recording errors."""
    try:
        return open_inside(directory, name)
    except FileNotFoundError:
        raise RecordingError(f"{directory / name}: missing ({what})") from None
    except Outside as exc:
        raise RecordingError(
            f"{directory / MANIFEST}: {what}: {exc}",
            "a recording reads only regular files inside its own directory; "
            "correct the manifest's file names (nothing was sent)",
        ) from None
    except OSError as exc:
        raise RecordingError(f"{directory / name}: cannot be opened ({exc.strerror})") from None


def open_recording(directory: Path | str) -> Recording:
    """Open and validate a recording: manifest, version and every file's sha256.

    The manifest is untrusted: it is read within :data:`MAX_MANIFEST_BYTES`, checked
    field by field (:mod:`moisson.ops.recording_manifest`), and may name only regular
    files inside ``directory``; each file is hashed as it streams, never held whole.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        raise RecordingError(f"{path}: no manifest; is {directory} a recording?")
    fo, size = _open(directory, MANIFEST, "the manifest")
    with fo:
        if size > MAX_MANIFEST_BYTES:
            raise RecordingError(f"{path}: {size:,} bytes, more than {MAX_MANIFEST_BYTES:,}")
        raw = fo.read(size)
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise RecordingError(f"{path}: unreadable manifest ({exc})") from None
    try:
        manifest = checked(manifest)
    except ManifestError as exc:
        raise RecordingError(f"{path}: {exc}", exc.fix) from None
    for topic, meta in manifest["topics"].items():
        f = directory / meta["file"]
        fo, size = _open(directory, meta["file"], f"topic {topic}")
        with fo:
            if size > MAX_INFLATED_BYTES:
                raise RecordingError(f"{f}: {size:,} bytes, more than {MAX_INFLATED_BYTES:,}")
            digest = hashlib.file_digest(fo, "sha256").hexdigest()
        if digest != meta["sha256"]:
            raise RecordingError(
                f"{f}: sha256 {digest[:12]}… does not match the manifest's "
                f"{meta['sha256'][:12]}…; the file changed after recording"
            )
    return Recording(directory, manifest)


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), so a simulation lands where Kafka would put it."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def write_simulation(
    directory: Path,
    events: Iterable[Any],
    partitions: int,
    extra: dict[str, Any],
    topic_for: dict[str, str],
    progress: Any = None,
) -> dict[str, Any]:
    """Write sensor events as the recording Kafka would have given (no Kafka involved)."""
    writer = RecordingWriter(
        directory,
        {t: partitions for t in topic_for.values()},
        kinds={t: k for k, t in topic_for.items()},
        source="simulate",
        extra=extra,
    )
    offsets: dict[tuple[str, int], int] = {}
    n = 0
    for ev in events:
        topic = topic_for[ev.kind]
        key = ev.citizen_id.encode()
        p = partition_for(key, partitions)
        offset = offsets.get((topic, p), 0)
        offsets[(topic, p)] = offset + 1
        writer.write(Message(topic, p, offset, ev.occurred_ms, key, ev.encode()))
        n += 1
        if progress is not None and n % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(n % 1000)
    return writer.close()
