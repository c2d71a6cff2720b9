"""The bounded reader of a recording's Avro Object Container Files.

A recording may come from a stranger, so its files are read as untrusted input.
fastavro's reader would decode a file with the writer schema and codec the file names,
inflate each block whole and believe every length and count it declares: a 12 KB
bzip2 block inflates to 536 MB, and an ``array<null>`` schema turns 16 bytes into 2⁶²
items. This reader instead

- accepts only the recording schema (a file whose schema is not ours is refused),
  and decodes that one fixed layout itself, so no count or length is believed before
  the bytes behind it are there;
- inflates every block through a decompressor capped at :data:`MAX_BLOCK_BYTES`, and
  a file (or all the files of one recording together) at :data:`MAX_INFLATED_BYTES`;
- caps the header at :data:`MAX_META_BYTES`, each message's headers at
  :data:`MAX_HEADERS`, and an xz decoder's memory at :data:`XZ_MEMORY`.

So reading any file costs at most a few times :data:`MAX_BLOCK_BYTES` of memory
beyond the messages it yields. Files are written with fastavro (``RecordingWriter``).
"""

from __future__ import annotations

import bz2
import json
import lzma
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from io import BufferedReader
from pathlib import Path
from typing import IO, Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from moisson.ops.recording_manifest import MAX_TIMESTAMP
from schemas.codec import HEADER_LEN
from schemas.codec import MAGIC as SINGLE_OBJECT

MAX_META_BYTES = 1 << 20
"""Largest file header (its metadata: the schemas and codec), in bytes."""
MAX_BLOCK_BYTES = 16 << 20
"""Largest block, stored or inflated, in bytes (fastavro writes blocks of about 16 KB)."""
MAX_INFLATED_BYTES = 1 << 30
"""Largest file, and largest recording (all its files together), once inflated, in bytes:
about 6 million sensor events, which replay holds in memory to sort them."""
MAX_HEADERS = 64
"""Most Kafka headers one recorded message may carry."""
CODECS = ("null", "deflate", "bzip2", "xz")
"""The codecs read here, each through a decompressor with an output cap."""
XZ_MEMORY = 64 << 20
"""Most memory an xz block's decoder may ask for (its dictionary): fastavro's takes 9 MiB."""
SCHEMAS_KEY = "moisson.schemas"
"""The header metadata holding the sensors' writer schemas, by fingerprint."""

MAGIC = b"Obj\x01"
SYNC_SIZE = 16
MIN_RECORD_BYTES = 7  # seven fields, each at least one byte

MESSAGE_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "RecordedMessage",
        "namespace": "org.moisson.recording",
        "doc": "One Kafka message as it was consumed (or as the simulation would have sent it).",
        "fields": [
            {"name": "topic", "type": "string"},
            {"name": "partition", "type": "int"},
            {"name": "offset", "type": "long"},
            {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "key", "type": ["null", "bytes"], "default": None},
            {
                "name": "headers",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Header",
                        "fields": [
                            {"name": "key", "type": "string"},
                            {"name": "value", "type": ["null", "bytes"], "default": None},
                        ],
                    },
                },
                "default": [],
            },
            {"name": "value", "type": ["null", "bytes"]},
        ],
    }
)


@cache
def _canonical() -> str:
    return to_parsing_canonical_form(MESSAGE_SCHEMA)


#: One decoded message: topic, partition, offset, timestamp (ms), key, value, headers.
Row = tuple[str, int, int, int, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]


class Corrupt(Exception):
    """The file breaks the container format or a cap; the message says where and why."""


class Invalid(Corrupt):
    """A well-formed file or message that is not what moisson and the manifest expect."""


class TooLarge(Corrupt):
    """The file, or one block of it, inflates past a cap."""


class Budget:
    """The inflated bytes still allowed, shared by the files read against it."""

    def __init__(self, total: int = MAX_INFLATED_BYTES) -> None:
        self.total = self.left = total


class Outside(Exception):
    """A name that is not a regular file inside the recording's directory."""


def open_inside(directory: Path, name: str) -> tuple[BufferedReader, int]:
    """The regular file ``name`` inside ``directory``, open for reading, and its size.

    Refused (:class:`Outside`): an absolute name, a ``..``, a symlink that leads out
    of the directory, and anything but a regular file (a device such as /dev/zero, a
    FIFO, a directory). FileNotFoundError when nothing is there.
    """
    rel = Path(name)
    if not name or rel.is_absolute() or ".." in rel.parts or "\x00" in name:
        raise Outside(f"{name!r} is not a relative path inside the recording")
    root = directory.resolve()
    try:
        target = (root / rel).resolve(strict=True)
    except RuntimeError:  # a symlink loop (Python 3.11 and 3.12)
        raise Outside(f"{name!r} is a symlink loop") from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise Outside(f"{name!r} cannot be resolved ({exc.strerror})") from None
    if not target.is_relative_to(root) or target == root:
        raise Outside(f"{name!r} leads outside the recording, to {target}")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)  # no wait on a FIFO
    fd = os.open(target, flags)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise Outside(f"{name!r} is not a regular file")
    return os.fdopen(fd, "rb"), info.st_size


def _long(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at ``pos`` of ``buf``: (value, next position)."""
    b = buf[pos]  # IndexError: the block ends inside a number
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    n, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = buf[pos]
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos + 1
        shift += 7
        if shift > 63:
            raise Corrupt("a number longer than 64 bits")


def _bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _long(buf, pos)
    end = pos + n
    if n < 0 or end > len(buf):
        raise Corrupt(f"a length of {n} bytes where {len(buf) - pos} remain")
    return buf[pos:end], end


def _optional(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    branch, pos = _long(buf, pos)
    if branch == 0:
        return None, pos
    if branch == 1:
        return _bytes(buf, pos)
    raise Corrupt(f"union branch {branch} of [null, bytes]")


def _record(buf: bytes, pos: int) -> tuple[Row, int]:
    """One RecordedMessage, decoded field by field as the schema lays it out."""
    topic, pos = _bytes(buf, pos)
    partition, pos = _long(buf, pos)
    if not -(1 << 31) <= partition < 1 << 31:
        raise Corrupt(f"partition {partition} does not fit an Avro int")
    offset, pos = _long(buf, pos)
    timestamp, pos = _long(buf, pos)
    key, pos = _optional(buf, pos)
    headers: list[tuple[str, bytes | None]] = []
    while True:
        count, pos = _long(buf, pos)
        if count == 0:
            break
        if count < 0:  # a block that also gives its size in bytes
            count = -count
            _, pos = _long(buf, pos)
        if len(headers) + count > MAX_HEADERS:
            raise Corrupt(f"a message with more than {MAX_HEADERS} headers")
        for _ in range(count):
            name, pos = _bytes(buf, pos)
            hv, pos = _optional(buf, pos)
            headers.append((name.decode(), hv))
    value, pos = _optional(buf, pos)
    return (topic.decode(), partition, offset, timestamp, key, value, tuple(headers)), pos


def records(block: bytes, count: int) -> Iterator[Row]:
    """The ``count`` messages of one inflated block, which they must fill exactly."""
    if count < 0 or count * MIN_RECORD_BYTES > len(block):
        raise Corrupt(f"a block of {len(block)} bytes claims {count} messages")
    pos = 0
    try:
        for _ in range(count):
            row, pos = _record(block, pos)
            yield row
    except IndexError:
        raise Corrupt("a block ends inside a message") from None
    except UnicodeDecodeError:
        raise Corrupt("a topic or header name that is not UTF-8") from None
    if pos != len(block):
        raise Corrupt(f"{len(block) - pos} bytes after the last message of a block")


def inflate(codec: str, data: bytes, cap: int) -> bytes:
    """``data`` decompressed with ``codec``, refused as soon as it passes ``cap`` bytes."""
    if codec == "null":
        out, done = data, True
    else:
        d: Any = {
            "deflate": lambda: zlib.decompressobj(-15),
            "bzip2": bz2.BZ2Decompressor,
            "xz": lambda: lzma.LZMADecompressor(memlimit=XZ_MEMORY),
        }[codec]()
        try:
            out = d.decompress(data, cap + 1)
        except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
            raise Corrupt(f"a {codec} block that does not decompress ({exc})") from None
        done = d.eof  # bytes after the end are ignored: fastavro leaves 3 of zlib's checksum
    if len(out) > cap:
        raise TooLarge(f"a block inflating past {cap:,} bytes")
    if not done:
        raise Corrupt(f"a truncated {codec} block")
    return out


class _File:
    """Exact reads from a file of known size: never more than the bytes left."""

    def __init__(self, fo: IO[bytes], size: int) -> None:
        self.fo, self.size, self.pos = fo, size, 0

    def read(self, n: int) -> bytes:
        if n < 0 or n > self.size - self.pos:
            left = self.size - self.pos
            raise Corrupt(f"truncated: {n} bytes declared at byte {self.pos}, {left} remain")
        data = self.fo.read(n)
        if len(data) != n:
            raise Corrupt(f"the file ended at byte {self.pos + len(data)}, it changed while read")
        self.pos += n
        return data

    def long(self) -> int:
        n = shift = 0
        while True:
            b = self.read(1)[0]
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return (n >> 1) ^ -(n & 1)
            shift += 7
            if shift > 63:
                raise Corrupt(f"a number longer than 64 bits at byte {self.pos}")


def _header(f: _File) -> tuple[dict[str, bytes], bytes]:
    """The metadata map and the sync marker, within :data:`MAX_META_BYTES`."""
    if f.read(len(MAGIC)) != MAGIC:
        raise Corrupt("not an Avro container file")
    meta: dict[str, bytes] = {}
    while (count := f.long()) != 0:
        if count < 0:
            count = -count
            f.long()
        for _ in range(count):
            key = f.read(_meta_len(f)).decode(errors="replace")
            meta[key] = f.read(_meta_len(f))
    return meta, f.read(SYNC_SIZE)


def _meta_len(f: _File) -> int:
    n = f.long()
    if n < 0 or f.pos + n > MAX_META_BYTES:
        raise Invalid(f"a header larger than {MAX_META_BYTES:,} bytes; refused unread")
    return n


def _check_schema(meta: dict[str, bytes]) -> str:
    """The codec, once the file's schema is known to be the recording schema."""
    try:
        schema = json.loads(meta["avro.schema"])
        same = to_parsing_canonical_form(fastavro.parse_schema(schema)) == _canonical()
    except KeyError:
        raise Corrupt("no avro.schema in its header") from None
    except Exception:  # any schema fastavro cannot parse is not ours either
        same = False
    if not same:
        raise Invalid("its schema is not moisson's RecordedMessage; refused unread")
    codec = meta.get("avro.codec", b"null").decode(errors="replace")
    if codec not in CODECS:
        raise Invalid(f"its codec {codec!r} is none of {', '.join(CODECS)}; refused unread")
    return codec


def read_container(
    fo: IO[bytes],
    size: int,
    check_meta: Callable[[dict[str, bytes]], Any],
    budget: Budget | None = None,
) -> Iterator[Row]:
    """Every message of the container in ``fo`` (``size`` bytes), block by block.

    ``check_meta`` sees the header's metadata before any block is read; every block
    inflated is taken from ``budget`` (default: a budget of its own for this file).
    """
    budget = budget or Budget()
    f = _File(fo, size)
    meta, sync = _header(f)
    codec = _check_schema(meta)
    check_meta(meta)
    while f.pos < f.size:
        count = f.long()
        stored = f.long()
        if stored > MAX_BLOCK_BYTES:
            raise TooLarge(f"a block of {stored:,} bytes stored (at most {MAX_BLOCK_BYTES:,})")
        data = f.read(stored)
        if f.read(SYNC_SIZE) != sync:
            raise Corrupt(f"no sync marker after the block ending at byte {f.pos - SYNC_SIZE}")
        try:
            block = inflate(codec, data, min(MAX_BLOCK_BYTES, budget.left))
        except TooLarge:
            if budget.left < MAX_BLOCK_BYTES:
                raise TooLarge(f"more than {budget.total:,} bytes once inflated") from None
            raise
        budget.left -= len(block)
        del data
        yield from records(block, count)


def carried(metadata: dict[str, bytes]) -> set[str]:
    """The fingerprints of the writer schemas a file's header carries."""
    raw = metadata.get(SCHEMAS_KEY)
    if raw is None:
        raise Invalid(f"carries no writer schemas (missing {SCHEMAS_KEY})")
    try:
        schemas = json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid(f"its {SCHEMAS_KEY} metadata is not JSON") from None
    if not isinstance(schemas, dict):
        raise Invalid(f"its {SCHEMAS_KEY} metadata is not a JSON object")
    return set(schemas)


def check_row(row: Row, topic: str, partitions: int, known: set[str]) -> None:
    """A message must be of the file's topic and partitions, and name a schema the
    file carries (``known``)."""
    t, partition, offset, timestamp, _, value, _ = row
    where = f"message {partition}@{offset}"
    if t != topic:
        raise Invalid(f"{where} is of topic {t!r}, in the file of {topic!r}")
    if not 0 <= partition < partitions:
        raise Invalid(f"{where}: partition outside the {partitions} recorded")
    if not (0 <= offset < 1 << 63 and 0 <= timestamp <= MAX_TIMESTAMP):
        raise Invalid(f"{where}: offset or timestamp {timestamp} out of range")
    if value is not None and value[:2] == SINGLE_OBJECT and len(value) >= HEADER_LEN:
        fp = value[2:HEADER_LEN].hex()
        if fp not in known:
            raise Invalid(
                f"{where} uses schema {fp}, which the file does not carry (missing schema)"
            )
