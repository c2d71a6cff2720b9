"""The bounded container reader: it reads back exactly what the real writer (fastavro)
wrote, never raises anything but its own errors on tampered bytes, and holds to its caps."""

from __future__ import annotations

import bz2
import io
import lzma
import tempfile
import zlib
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moisson.ops import recording_file as rf
from moisson.ops.recording import Message, RecordingError, RecordingWriter, open_recording
from tests.moisson.ops.hostile_recordings import (
    FILE,
    TOPIC,
    container,
    header,
    one_record,
    replace_file,
    simulate,
    zigzag,
)

blobs = st.one_of(st.none(), st.binary(max_size=300))
messages = st.builds(
    Message,
    topic=st.just(TOPIC),
    partition=st.integers(0, 3),
    offset=st.integers(0, 2**63 - 1),
    timestamp=st.integers(0, rf.MAX_TIMESTAMP),
    key=blobs,
    value=blobs,
    headers=st.lists(st.tuples(st.text(max_size=20), blobs), max_size=rf.MAX_HEADERS).map(tuple),
)


def read(path: Path, budget: rf.Budget | None = None) -> list[rf.Row]:
    with open(path, "rb") as fo:
        return list(rf.read_container(fo, path.stat().st_size, lambda _: None, budget))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(messages, max_size=60), codec=st.sampled_from(rf.CODECS))
def test_reads_back_exactly_what_fastavro_wrote(batch: list[Message], codec: str):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.avro"
        with open(path, "wb") as fo:
            w = fastavro.write.Writer(fo, rf.MESSAGE_SCHEMA, codec=codec, sync_interval=2000)
            for m in batch:
                w.write(m.as_record())
            w.flush()
        assert [Message(*row) for row in read(path)] == batch


def test_the_real_writer_round_trips_through_open_recording(tmp_path: Path):
    batch = [
        Message(TOPIC, 1, 0, 5, b"c1", b"v", (("trace", b"1"), ("empty", None))),
        Message(TOPIC, 3, 7, 2**40, None, None),
    ]
    w = RecordingWriter(tmp_path / "r", {TOPIC: 4}, kinds={TOPIC: "metro"}, source="test")
    for m in batch:
        w.write(m)
    w.close()
    rec = open_recording(tmp_path / "r")
    rec.check()
    assert list(rec.messages(TOPIC)) == batch


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_tampered_bytes_raise_only_the_readers_own_error(data: st.DataObject):
    """Flipped, cut or inserted bytes anywhere in a real file: the reader yields or
    raises Corrupt, never another exception, and never runs away."""
    raw = bytearray(GOLDEN_FILE.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at : at + data.draw(st.integers(1, 64))]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    fo = io.BytesIO(bytes(raw))
    try:
        for _ in rf.read_container(fo, len(raw), lambda _: None):
            pass
    except rf.Corrupt:
        pass


GOLDEN_FILE = Path(__file__).parents[2] / "golden" / "recording" / "sensors.book.avro"


@pytest.mark.parametrize(
    "codec,compress",
    [
        ("deflate", lambda b: zlib.compress(b)[2:-4]),
        ("bzip2", bz2.compress),
        ("xz", lzma.compress),
        ("null", lambda b: b),
    ],
)
def test_inflate_stops_at_its_cap(codec: str, compress):
    data = compress(b"x" * 1000)
    assert rf.inflate(codec, data, 1000) == b"x" * 1000
    with pytest.raises(rf.TooLarge, match="past 999 bytes"):
        rf.inflate(codec, data, 999)


def test_an_xz_block_asking_for_a_huge_dictionary_is_corrupt():
    data = lzma.compress(b"x" * 1000, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 30}])
    with pytest.raises(rf.Corrupt, match="does not decompress"):
        rf.inflate("xz", data, 10_000)


def test_a_truncated_compressed_block_is_corrupt():
    with pytest.raises(rf.Corrupt, match="truncated deflate"):
        rf.inflate("deflate", zlib.compress(bytes(5000))[2:-20], 10_000)
    with pytest.raises(rf.Corrupt, match="does not decompress"):
        rf.inflate("bzip2", b"not bzip2 at all", 10_000)


def test_the_budget_caps_a_file_and_the_files_that_share_it(tmp_path: Path):
    """Blocks each under the block cap, together past the budget: refused at the block
    that passes it. One budget shared by two files counts both."""
    simulate(tmp_path / "r")
    path = tmp_path / "r" / FILE
    size = len(b"".join(b for b in _inflated_blocks(path)))
    assert len(read(path, rf.Budget(size))) > 0
    with pytest.raises(rf.TooLarge, match=f"more than {size - 1:,} bytes once inflated"):
        read(path, rf.Budget(size - 1))
    shared = rf.Budget(size + size // 2)
    read(path, shared)
    with pytest.raises(rf.TooLarge):
        read(path, shared)


def _inflated_blocks(path: Path) -> list[bytes]:
    with open(path, "rb") as fo:
        return [b.bytes_.getvalue() for b in fastavro.block_reader(fo)]


def test_a_block_stored_past_the_block_cap_is_refused_unread(tmp_path: Path):
    """A stored size above the cap is refused before it is read, whatever the file holds."""
    simulate(tmp_path / "r")
    meta, sync = header(tmp_path / "r" / FILE)
    forged = container(meta, sync, []) + zigzag(1) + zigzag(rf.MAX_BLOCK_BYTES + 1) + sync
    path = tmp_path / "forged.avro"
    path.write_bytes(forged)
    with pytest.raises(rf.TooLarge, match="stored"):
        read(path)


@pytest.mark.parametrize(
    "schema,codec,why",
    [
        (b'{"type": "array", "items": "null"}', b"null", "schema is not moisson's"),
        (b"not json", b"null", "schema is not moisson's"),
        (None, b"snappy", "codec 'snappy' is none of null, deflate, bzip2, xz"),
    ],
)
def test_another_schema_or_codec_is_refused_unread(tmp_path: Path, schema, codec, why):
    simulate(tmp_path / "r")
    meta, sync = header(tmp_path / "r" / FILE)
    meta["avro.codec"] = codec
    if schema is not None:
        meta["avro.schema"] = schema
    replace_file(tmp_path / "r", container(meta, sync, [(1, b"\x00" * 16)]))
    rec = open_recording(tmp_path / "r")
    with pytest.raises(RecordingError, match=why):
        rec.check()


def test_a_header_past_its_cap_is_refused(tmp_path: Path):
    simulate(tmp_path / "r")
    meta, sync = header(tmp_path / "r" / FILE)
    meta["padding"] = bytes(rf.MAX_META_BYTES)
    replace_file(tmp_path / "r", container(meta, sync, []))
    with pytest.raises(RecordingError, match="header larger than"):
        open_recording(tmp_path / "r").check()


@pytest.mark.parametrize(
    "count,headers,why",
    [
        (1, rf.MAX_HEADERS + 1, "more than 64 headers"),
        (1, rf.MAX_HEADERS, "ends inside a message"),  # the items must be there
        (2**62, 0, "claims 4611686018427387904 messages"),
        (1, 0, "20 bytes after the last message of a block"),
        (2, 0, "message 0@0 is of topic '', in the file of 'sensors.metro'"),
    ],
)
def test_counts_are_checked_against_the_bytes_behind_them(
    tmp_path: Path, count: int, headers: int, why: str
):
    simulate(tmp_path / "r")
    meta, sync = header(tmp_path / "r" / FILE)
    block = zlib.compress(one_record(headers) + bytes(20))[2:-4]
    replace_file(tmp_path / "r", container(meta, sync, [(count, block)]))
    with pytest.raises(RecordingError, match=why):
        open_recording(tmp_path / "r").check()


def test_a_varint_longer_than_64_bits_is_corrupt():
    with pytest.raises(rf.Corrupt, match="longer than 64 bits"):
        list(rf.records(b"\xff" * 12 + bytes(20), 1))
