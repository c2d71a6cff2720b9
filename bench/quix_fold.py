"""The Quix Streams baseline of P2: the same keyed stateful fold as the faust harvester.

Run by bench/run.py as a child process (Quix wants the main thread for its signal
handlers), consuming the same pre-loaded sensor topics: decode, ``apply_message`` on
the double held in Quix's RocksDB state (stored as the Avro single object that is also
produced: one encoding per event, like the harvester), the new double produced to an
output topic. Rejections are only counted.

    python bench/quix_fold.py BOOTSTRAP TOPIC_PREFIX GROUP STATE_DIR
"""

from __future__ import annotations

import json
import sys
from typing import Any

from quixstreams import Application, message_context
from quixstreams.state.rocksdb import RocksDBOptions

from processors.harvest import apply_message
from processors.scoring import load_rules
from schemas.codec import DOUBLE, MAGIC, decode, encode

KINDS = ("metro", "payment", "book", "camera")


def dumps(value: Any) -> bytes:
    """Encoded doubles pass through (encoded once, like the harvester); the rest is JSON."""
    if isinstance(value, bytes):
        return value
    return json.dumps(value).encode()


def loads(data: bytes) -> Any:
    return data if data[:2] == MAGIC else json.loads(data)


def main() -> None:
    bootstrap, prefix, group, state_dir = sys.argv[1:5]
    rules = load_rules()
    kind_by_topic = {f"{prefix}sensors.{k}": k for k in KINDS}
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=2.8,  # faust's default broker_commit_interval: same granularity
        rocksdb_options=RocksDBOptions(dumps=dumps, loads=loads),
    )
    out = app.topic(f"{prefix}quix.doubles", key_serializer="bytes", value_serializer="bytes")
    frames = [
        app.dataframe(app.topic(t, key_deserializer="bytes", value_deserializer="bytes"))
        for t in kind_by_topic
    ]
    sdf = frames[0]
    for other in frames[1:]:
        sdf = sdf.concat(other)

    def fold(value: bytes, key: bytes, timestamp: int, headers: Any, state: Any) -> Any:
        topic = message_context().topic
        held = state.get("double")
        current = decode(held, DOUBLE)[1] if held is not None else None
        outcome = apply_message(
            current,
            expected_kind=kind_by_topic.get(topic),
            topic=topic,
            key=key,
            value=value,
            rules=rules,
        )
        if outcome.double is None:
            return None
        encoded = encode(DOUBLE, outcome.double)
        state.set("double", encoded)
        return encoded

    sdf = sdf.apply(fold, stateful=True, metadata=True)
    sdf = sdf.filter(lambda v: v is not None)
    sdf.to_topic(out)
    app.run()


if __name__ == "__main__":
    main()
