"""M: what metrics cost the harvester. One faust worker with faust's own Prometheus
monitor (``METRICS_FAUST_MONITOR``) against the same worker without it, on the same
pre-loaded events; moisson's own families count in both. Also the in-process cost of
moisson's per-batch count (``ProcessorMetrics.observe_batch``) per event."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.checks import require_applied
from bench.harness import Result, isolate, say
from bench.measure import end_offsets, preload
from bench.p2_fold import run_faust

if TYPE_CHECKING:
    from moisson.settings import Settings


def observe_cost_us(batches: int = 20_000, events: int = 1000) -> float:
    """Microseconds per event of counting one batch of ``events`` (four topics, two
    reasons, one sanction): the work moisson's metrics add to the harvester."""
    from moisson.metrics import ProcessorMetrics

    m = ProcessorMetrics()
    consumed = {f"sensors.{k}": events // 4 for k in ("metro", "payment", "book", "camera")}
    started = time.perf_counter()
    for _ in range(batches):
        m.observe_batch(
            consumed=consumed,
            applied=events - 2,
            rejected={"duplicate": 1, "oversize": 1},
            dead_letters={"oversize": 1},
            sanctions={"blacklisted": 1},
            ledger=events // 3,
            seconds=0.01,
        )
    return (time.perf_counter() - started) / (batches * events) * 1e6


def metrics_cost(s: Settings, n: int, workdir: Path) -> list[Result]:
    from producers.city import generate_events

    off, on = isolate(s, "m-off"), isolate(s, "m-on").replace(metrics={"faust_monitor": True})
    say(f"M: generating and pre-loading {n:,} mixed sensor events, twice")
    events = [
        (e.kind, e.citizen_id.encode(), e.encode()) for e in generate_events(13, 10_000, count=n)
    ]
    for target in (off, on):
        preload(target, ((target.topics.sensor(k), key, value) for k, key, value in events))
    del events
    timeout = max(600.0, n / 500)
    rates = {}
    for name, target in (("off", off), ("on", on)):
        say(f"M: one faust worker, faust's monitor {name}")
        ends = end_offsets(target, target.topics.sensors)
        rate, per_cpu, _, _ = run_faust(target, 1, ends, workdir, timeout)
        require_applied(target, f"faust (monitor {name})", target.topics.doubles, n)
        rates[name] = (rate, per_cpu)
        say(f"M: monitor {name}: {rate:,.0f} ev/s, {per_cpu:,.0f} per CPU-second")
    per_event = observe_cost_us()
    ratio = rates["on"][0] / rates["off"][0]
    return [
        Result(
            "M faust monitor on / off",
            round(rates["on"][0]),
            "events/s",
            round(rates["off"][0]),
            round(ratio, 3),
            "informational (why it is off by default)",
            None,
            {
                "events": n,
                "events_per_cpu_s_on": round(rates["on"][1]),
                "events_per_cpu_s_off": round(rates["off"][1]),
                "cpu_ratio": round(rates["on"][1] / rates["off"][1], 3),
                "moisson_count_us_per_event": round(per_event, 4),
            },
        )
    ]
