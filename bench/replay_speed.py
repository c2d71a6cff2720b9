"""Benchmark: does `replay --speed N` keep the recorded order and take span / N?

Replays the golden recording, on topics of its own, into a real broker (the configured
one, else one started by ``moisson.stack.provision.provide``) at a speed that should take
about five seconds, then reads the topics back. Reports the measured span against the
expected one (ratio ≈ 1 is right) and whether every partition kept timestamp order.

    .venv/bin/python -m bench.replay_speed [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from moisson.ops.recording import open_recording
from moisson.ops.replay import plan_replay, replay
from moisson.settings import Settings
from moisson.stack.provision import isolated, provide

GOLDEN = Path(__file__).parents[1] / "tests" / "golden" / "recording"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="Expected replay duration.")
    args = ap.parse_args()
    said: list[str] = []
    with (
        tempfile.TemporaryDirectory(
            prefix="moisson-replay-speed-", ignore_cleanup_errors=True
        ) as d,
        provide(Settings(), Path(d), database=False, say=said.append) as given,
    ):
        s = isolated(given, "bench-replay")
        rec = open_recording(GOLDEN)
        plan = plan_replay(rec, s)
        speed = plan.span_ms / 1000 / args.seconds
        summary = replay(
            plan,
            s,
            speed=speed,
            recorded_partitions={t: m["partitions"] for t, m in rec.topics.items()},
        )
        expected = plan.span_ms / 1000 / speed
        consumer = KafkaConsumer(
            bootstrap_servers=s.kafka.bootstrap_servers, consumer_timeout_ms=3000
        )
        parts = [TopicPartition(t, p) for t in s.topics.sensors for p in range(4)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        last: dict[tuple[str, int], int] = {}
        ordered, n = True, 0
        for r in consumer:
            n += 1
            k = (r.topic, r.partition)
            ordered &= r.timestamp >= last.get(k, 0)
            last[k] = r.timestamp
        consumer.close()
    broker = said[-1].removeprefix("Kafka: ")  # provide's last line describes the broker
    result = {
        "id": "replay-speed",
        "value": round(summary.seconds, 3),
        "unit": "s",
        "baseline": round(expected, 3),
        "ratio": round(summary.seconds / expected, 4),
        "target": "≈1 and ordered",
        "met": ordered and n == summary.sent and 0.95 <= summary.seconds / expected <= 1.1,
        "messages": summary.sent,
        "read_back": n,
        "ordered": ordered,
        "speed": round(speed, 1),
        "broker": broker,
    }
    out = Path(__file__).parent / "results" / "replay_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"replay at {speed:,.0f}×: {summary.seconds:.2f}s for an expected {expected:.2f}s "
        f"(ratio {result['ratio']}); {n:,}/{summary.sent:,} read back, ordered={ordered} "
        f"[{broker}]"
    )


if __name__ == "__main__":
    main()
