"""P6: events/s of ``replay --speed max`` of a recording, against P1's raw limit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import Result, isolate, say

if TYPE_CHECKING:
    from moisson.settings import Settings


def p6(s: Settings, n: int, raw_rate: float, workdir: Path) -> Result:
    """P6 on a recording of ``n`` events, against ``raw_rate`` (P1's raw limit)."""
    from moisson.ops.recording import open_recording, write_simulation
    from moisson.ops.replay import plan_replay, replay
    from producers.city import generate_events
    from schemas.kinds import SENSOR_KINDS

    s = isolate(s, "p6")
    out = workdir / "recording"
    say(f"P6: recording {n:,} simulated events")
    write_simulation(
        out,
        generate_events(23, 10_000, count=n),
        s.kafka.partitions,
        {"seed": 23},
        {k: s.topics.sensor(k) for k in SENSOR_KINDS},
    )
    rec = open_recording(out)
    plan = plan_replay(rec, s)
    say("P6: replay --speed max")
    summary = replay(
        plan,
        s,
        speed=0,
        recorded_partitions={t: m["partitions"] for t, m in rec.topics.items()},
    )
    rate = summary.sent / summary.seconds
    ratio = rate / raw_rate
    return Result(
        "P6 replay",
        round(rate),
        "events/s",
        round(raw_rate),
        round(ratio, 3),
        "≥ 0.8 × P1 raw limit",
        ratio >= 0.8,
        {"events": summary.sent},
    )
