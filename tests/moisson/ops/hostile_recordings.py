"""Hostile recordings, each made by the real recording writer and then tampered with,
as a stranger could: bombs, paths out of the recording, devices, topic escapes, caps.

``build(name, directory)`` makes the recording ``name`` of :data:`HOSTILE`; its value
is a piece of the refusal that must name the attack.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastavro import schemaless_writer
from fastavro.read import HEADER_SCHEMA

from moisson.ops.recording import Message, RecordingWriter, write_simulation
from moisson.settings import SENSOR_KINDS
from producers.city import generate_events
from schemas.codec import SANCTION, encode
from tests.factories import sanction

BOMB_BYTES = 256 << 20  # what a bomb block inflates to
FILE = "sensors.metro.avro"
TOPIC = "sensors.metro"


def simulate(directory: Path) -> Path:
    """A small, valid recording of the four sensor topics (the real writer)."""
    events = generate_events(7, 20, days=1)
    write_simulation(directory, events, 4, {"seed": 7}, {k: f"sensors.{k}" for k in SENSOR_KINDS})
    return directory


def zigzag(n: int) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, "long", n)
    return out.getvalue()


def header(path: Path) -> tuple[dict[str, bytes], bytes]:
    """The metadata and sync marker of a container file, read with fastavro."""
    from fastavro import schemaless_reader

    with open(path, "rb") as fo:
        h: Any = schemaless_reader(fo, HEADER_SCHEMA, None)
    return dict(h["meta"]), h["sync"]


def container(meta: dict[str, bytes], sync: bytes, blocks: list[tuple[int, bytes]]) -> bytes:
    """An Avro container file: the header, then (count, stored bytes) blocks."""
    out = io.BytesIO()
    out.write(b"Obj\x01")
    schemaless_writer(out, {"type": "map", "values": "bytes"}, meta)
    out.write(sync)
    for count, data in blocks:
        out.write(zigzag(count) + zigzag(len(data)) + data + sync)
    return out.getvalue()


def edit_manifest(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def replace_file(directory: Path, data: bytes, meta_change: dict[str, bytes] | None = None) -> None:
    """``sensors.metro.avro`` replaced by ``data``, the manifest's sha256 made to match."""
    (directory / FILE).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    edit_manifest(directory, lambda m: m["topics"][TOPIC].update(sha256=digest))


def compressed(compressor: Any, total: int) -> bytes:
    """``total`` zero bytes through ``compressor``, a MiB at a time."""
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(total >> 20)]
    return b"".join(parts) + compressor.flush()


def one_record(headers: int) -> bytes:
    """A RecordedMessage of topic sensors.metro whose headers array claims ``headers``."""
    body = zigzag(len(TOPIC)) + TOPIC.encode() + zigzag(0) * 3 + zigzag(0)  # 0, 0, 0, null key
    return body + zigzag(headers) + zigzag(0)  # headers (no bytes follow the count), null


def _tampered_block(directory: Path, codec: str, count: int, inflated: bytes | None) -> None:
    meta, sync = header(directory / FILE)
    meta["avro.codec"] = codec.encode()
    if codec == "bzip2":
        data = compressed(bz2.BZ2Compressor(9), BOMB_BYTES)
    elif inflated is None:
        data = compressed(zlib.compressobj(9, zlib.DEFLATED, -15), BOMB_BYTES)
    else:
        data = zlib.compress(inflated)[2:-4]
    replace_file(directory, container(meta, sync, [(count, data)]))


def _array_of_nulls(directory: Path) -> None:
    meta, sync = header(directory / FILE)
    meta["avro.schema"] = b'{"type": "array", "items": "null"}'
    meta["avro.codec"] = b"null"
    body = zigzag(2**62)
    body += b"\x00" * (16 - len(body))  # a 16-byte body declaring 2**62 nulls
    replace_file(directory, container(meta, sync, [(1, body)]))


def _outside(directory: Path, how: str) -> None:
    outside = directory.parent / f"{directory.name}-outside"
    simulate(outside)  # a valid recording file, outside this recording
    target = outside / FILE
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if how == "absolute":
        name = str(target)
    elif how == "dotdot":
        name = f"../{outside.name}/{FILE}"
    else:
        (directory / FILE).unlink()
        (directory / FILE).symlink_to(target)
        name = FILE
    edit_manifest(directory, lambda m: m["topics"][TOPIC].update(file=name, sha256=digest))


def _device(directory: Path, how: str) -> None:
    if how == "manifest":
        edit_manifest(directory, lambda m: m["topics"][TOPIC].update(file="/dev/zero"))
    elif how == "symlink":
        (directory / FILE).unlink()
        (directory / FILE).symlink_to("/dev/zero")
    elif how == "fifo":
        (directory / FILE).unlink()
        os.mkfifo(directory / FILE)
    else:  # the manifest itself
        (directory / "manifest.json").unlink()
        (directory / "manifest.json").symlink_to("/dev/zero")


def _other_topic(directory: Path, topic: str) -> None:
    """What ``moisson record --topics sensors.metro,<topic>`` writes (the real writer)."""
    shutil.rmtree(directory)
    w = RecordingWriter(directory, {TOPIC: 4, topic: 4}, kinds={TOPIC: "metro"}, source="record")
    for e in generate_events(7, 5, days=1):
        if e.kind == "metro":
            w.write(Message(TOPIC, 0, w.stats[TOPIC].count, e.occurred_ms, b"k", e.encode()))
    w.write(Message(topic, 0, 0, 1, b"c0000001", encode(SANCTION, sanction("c0000001"))))
    w.close()


def _partitions(directory: Path) -> None:
    edit_manifest(directory, lambda m: m["topics"][TOPIC].update(partitions=4096))


HOSTILE: dict[str, str] = {
    "bomb-deflate": "decompression bomb",
    "bomb-bzip2": "decompression bomb",
    "array-of-2^62-nulls": "not moisson's RecordedMessage",
    "2^62-headers": "more than 64 headers",
    "block-of-2^62-messages": "claims 4611686018427387904 messages",
    "absolute-path": "is not a relative path inside the recording",
    "dotdot-path": "is not a relative path inside the recording",
    "symlink-out": "leads outside the recording",
    "dev-zero": "'/dev/zero' is not a relative path inside the recording",
    "symlink-to-dev-zero": "leads outside the recording, to /dev/zero",
    "manifest-is-dev-zero": "leads outside the recording, to /dev/zero",
    "fifo": "is not a regular file",
    "topic-sanctions": "'sanctions', which is not a sensor topic",
    "topic-doubles": "'doubles', which is not a sensor topic",
    "partitions-4096": "partitions: Input should be less than or equal to 64",
}

_BUILD: dict[str, Callable[[Path], None]] = {
    "bomb-deflate": lambda d: _tampered_block(d, "deflate", 1, None),
    "bomb-bzip2": lambda d: _tampered_block(d, "bzip2", 1, None),
    "array-of-2^62-nulls": _array_of_nulls,
    "2^62-headers": lambda d: _tampered_block(d, "deflate", 1, one_record(2**62)),
    "block-of-2^62-messages": lambda d: _tampered_block(d, "deflate", 2**62, one_record(0)),
    "absolute-path": lambda d: _outside(d, "absolute"),
    "dotdot-path": lambda d: _outside(d, "dotdot"),
    "symlink-out": lambda d: _outside(d, "symlink"),
    "dev-zero": lambda d: _device(d, "manifest"),
    "symlink-to-dev-zero": lambda d: _device(d, "symlink"),
    "manifest-is-dev-zero": lambda d: _device(d, "manifest.json"),
    "fifo": lambda d: _device(d, "fifo"),
    "topic-sanctions": lambda d: _other_topic(d, "sanctions"),
    "topic-doubles": lambda d: _other_topic(d, "doubles"),
    "partitions-4096": _partitions,
}


def build(name: str, directory: Path) -> Path:
    """The hostile recording ``name`` in ``directory`` (made, then tampered with)."""
    simulate(directory)
    _BUILD[name](directory)
    return directory
