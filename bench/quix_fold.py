"""The Quix Streams baseline of P2: the same keyed stateful fold as the faust harvester.

Run by bench/p2_fold.py as a child process (Quix wants the main thread for its signal
handlers), consuming the same pre-loaded sensor topics. Each message goes through the
harvester's own planner (``processors.core.planning.plan_batch``, a batch of one): the same
validation, lateness against its partition's watermark, fold and eviction. The double
is held in Quix's RocksDB state as the Avro single object that is also produced (one
encoding per event), and the planner's other outputs are produced as the harvester
sends them: ledger entries, blacklist updates, dead letters and sanctions.

Quix keeps the watermarks in memory (the harvester stores them with its positions), and
its state has its own changelog topic, as Quix always does.

    python -m bench.quix_fold BOOTSTRAP TOPIC_PREFIX GROUP STATE_DIR
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from quixstreams import Application, message_context
from quixstreams.state.rocksdb import RocksDBOptions

from processors.core.horizon import Horizon
from processors.core.planning import Folding, Incoming, Position, period_key, plan_batch
from processors.core.scoring import load_rules
from schemas import dead_letters
from schemas.codec import BLACKLIST, DOUBLE, LEDGER, MAGIC, SANCTION, decode, encode
from schemas.topics import Topics


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
    kind_by_topic = Topics(prefix).kind_of
    folding = Folding(kinds=kind_by_topic, rules=rules, horizon=Horizon.of(rules))
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=2.8,  # faust's default broker_commit_interval: same granularity
        rocksdb_options=RocksDBOptions(dumps=dumps, loads=loads),
    )
    out = app.topic(f"{prefix}quix.doubles", key_serializer="bytes", value_serializer="bytes")
    outputs = {name: f"{prefix}quix.{name}" for name in ("ledger", "blacklist", "dlq", "sanctions")}
    for name in outputs.values():
        app.topic(name, key_serializer="bytes", value_serializer="bytes")
    frames = [
        app.dataframe(app.topic(t, key_deserializer="bytes", value_deserializer="bytes"))
        for t in kind_by_topic
    ]
    sdf = frames[0]
    for other in frames[1:]:
        sdf = sdf.concat(other)
    watermarks: dict[tuple[str, int], datetime | None] = {}
    producer = app.get_producer()

    def floor(partition: int) -> datetime | None:
        held = [watermarks.get((t, partition)) for t in kind_by_topic]
        return None if any(w is None for w in held) else min(w for w in held if w is not None)

    def fold(value: bytes, key: bytes, timestamp: int, headers: Any, state: Any) -> Any:
        ctx = message_context()
        src = (ctx.topic, ctx.partition)
        msg = Incoming(ctx.topic, ctx.partition, ctx.offset, key, value)
        held = state.get("double")
        current = decode(held, DOUBLE)[1] if held is not None else None
        plan = plan_batch(
            [msg],
            lambda _s: Position(ctx.offset, watermarks.get(src)),
            lambda _c, _i: current,
            folding,
            floors=floor,
        )
        if src in plan.positions:
            watermarks[src] = plan.positions[src][0].watermark
        for c, e, _ in plan.ledger:
            producer.produce(outputs["ledger"], encode(LEDGER, {"citizen_id": c, **e}), c.encode())
        for c, u in plan.blacklist:
            producer.produce(outputs["blacklist"], encode(BLACKLIST, u), period_key(c, u).encode())
        for dead in plan.dead_letters:
            producer.produce(
                outputs["dlq"], value, key, headers=[(dead_letters.REASON, dead.reason.encode())]
            )
        for c, s in plan.sanctions:
            producer.produce(outputs["sanctions"], encode(SANCTION, s), c.encode())
        written = plan.doubles or plan.republish
        if not written:
            return None
        ((double, _),) = written.values()
        encoded = encode(DOUBLE, double)
        state.set("double", encoded)
        return encoded

    sdf = sdf.apply(fold, stateful=True, metadata=True)
    sdf = sdf.filter(lambda v: v is not None)
    sdf.to_topic(out)
    with producer:
        app.run()


if __name__ == "__main__":
    main()
