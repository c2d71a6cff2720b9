"""The outbox: records grouped per topic partition into batches, handed to the
producer in the order they were sealed, one acknowledgement future per batch."""

from __future__ import annotations

import asyncio

from processors.engine.outbox import Outbox


class Builder:
    def __init__(self, room: int) -> None:
        self.records: list[tuple] = []
        self.room = room

    def append(self, *, key, value, timestamp, headers):
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value, tuple(headers)))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class Producer:
    """Hands batches over slowly (the first one slowest) and records the order."""

    def __init__(self, room: int = 3) -> None:
        self.room = room
        self.handed: list[tuple[str, int, list]] = []

    def create_batch(self) -> Builder:
        return Builder(self.room)

    async def send_batch(self, builder, topic, *, partition):
        await asyncio.sleep(0.02 if not self.handed else 0.001)
        self.handed.append((topic, partition, builder.records))
        delivery = asyncio.get_running_loop().create_future()
        delivery.set_result((topic, partition, len(builder.records)))
        return delivery


async def test_records_go_in_batches_per_partition_in_order():
    producer = Producer(room=3)
    box = Outbox(lambda: producer)
    for i in range(7):
        box.add("doubles", i % 2, f"k{i}".encode(), f"v{i}".encode())
    box.add("sensors.dlq", 0, None, b"", [("moisson.reason", b"too-late")])
    first = box.seal()
    box.add("doubles", 0, b"k7", b"v7")
    second = box.seal()
    assert [(s.tp, s.records) for s in first] == [
        (("doubles", 0), 3),  # full, sealed as the fourth record came
        (("doubles", 0), 1),
        (("doubles", 1), 3),
        (("sensors.dlq", 0), 1),
    ]
    acks = await asyncio.gather(*(s.future for s in [*first, *second]))
    assert sorted(acks) == sorted(
        [
            ("doubles", 0, 3),
            ("doubles", 0, 1),
            ("doubles", 1, 3),
            ("sensors.dlq", 0, 1),
            ("doubles", 0, 1),
        ]
    )
    zero = [r for t, p, records in producer.handed if (t, p) == ("doubles", 0) for r in records]
    assert [k for k, _, _ in zero] == [b"k0", b"k2", b"k4", b"k6", b"k7"], "in order, per partition"
    dlq = [records for t, _, records in producer.handed if t == "sensors.dlq"]
    assert dlq == [[(None, b"", (("moisson.reason", b"too-late"),))]]
    assert not box._last, "nothing left to wait for"
