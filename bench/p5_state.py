"""P5: a worker's RSS per citizen with the RocksDB store, against the memory store,
after one event per citizen."""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import Result, isolate, say
from bench.measure import (
    CommitWatch,
    alive_check,
    city_events,
    distinct_keys,
    end_offsets,
    preload,
    rss_bytes,
)
from moisson.ops import pipeline

if TYPE_CHECKING:
    from moisson.settings import Settings


def synthetic_payloads(s: Settings, citizens: int) -> Iterator[tuple[str, bytes, bytes]]:
    """One real sensor event per citizen: city templates with fresh ids."""
    templates = city_events(200, citizens=50)
    for i in range(citizens):
        t = templates[i % len(templates)]
        cid = f"c{i:08d}"
        record = {**t.record, "citizen_id": cid, "event_id": str(uuid.UUID(int=i + 1))}
        if "companions" in record:
            record["companions"] = []
        from producers.city import SensorEvent

        yield (s.topics.sensor(t.kind), cid.encode(), SensorEvent(t.kind, record).encode())


def p5(
    s: Settings,
    sizes: tuple[int, ...],
    workdir: Path,
    stores: tuple[str, ...] = ("memory://", "rocksdb://"),
) -> list[Result]:
    """P5 at each of ``sizes`` citizens, for each of ``stores``."""
    results = []
    for citizens in sizes:
        rss: dict[str, float] = {}
        for store in stores:
            st = isolate(s, f"p5{citizens}").replace(processor={"store": store})
            say(f"P5: {citizens:,} citizens, store {store}")
            preload(st, list(synthetic_payloads(st, citizens)))
            ends = end_offsets(st, st.topics.sensors)
            logs = {"worker": workdir / f"p5-{citizens}-{store[:3]}.log"}
            ws = st.replace(processor={"data_dir": workdir / f"faust-p5-{citizens}-{store[:3]}"})
            worker, _ = pipeline.start_worker_ready(ws, logs["worker"], timeout=180)
            try:
                idle = rss_bytes(worker.pid)
                watch = CommitWatch(st, st.processor.app_id, ends)
                try:
                    watch.rate(max(900.0, citizens / 200), alive_check({"worker": worker}, logs))
                finally:
                    watch.close()
                time.sleep(3)
                full = rss_bytes(worker.pid)
                doubles = distinct_keys(st, st.topics.doubles)
                if doubles != citizens:
                    raise RuntimeError(f"P5: {doubles:,} doubles for {citizens:,} citizens")
            finally:
                pipeline.stop(worker)
            rss[store] = (full - idle) / citizens
            shutil.rmtree(ws.processor.data_dir, ignore_errors=True)
        mem, rocks = rss.get("memory://", math.nan), rss.get("rocksdb://", math.nan)
        if math.isnan(rocks):
            continue
        mem_known = not math.isnan(mem)
        results.append(
            Result(
                f"P5 memory {citizens // 1000}k citizens",
                round(rocks),
                "bytes/citizen (RocksDB)",
                round(mem) if mem_known else None,
                round(rocks / mem, 3) if mem_known and mem > 0 else None,
                "≤ 2 KiB per citizen with RocksDB",
                rocks <= 2048,
                {
                    "citizens": citizens,
                    "events_per_citizen": 1,
                    "memory_store_bytes_per_citizen": round(mem) if mem_known else None,
                    "note": "worker RSS loaded minus RSS when ready; baseline: memory store",
                },
            )
        )
    return results
