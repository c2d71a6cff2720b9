"""moisson's benchmark suite: every figure a ratio against a raw limit measured in the same run.

Starts Apache Kafka and PostgreSQL with the project's own stack code (as the tests do;
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point it at running ones instead), then measures:

  P1 sensors publish    generation + Avro + Publisher  vs raw kafka-python sends
  P2 processor          one faust worker               vs Quix Streams, raw aiokafka loop
                        two faust workers              vs one
  P3 sink               PostgresSink.write             vs COPY into a temp table + upsert
  P4 end to end         send → row in PostgreSQL       p50/p95/p99 at a steady rate
  P5 memory             worker RSS per citizen         memory vs RocksDB store
  P6 replay             replay --speed max             vs P1's raw limit
  G  growth (pure)       one citizen at 100k events     vs the same at 10k (no services)
  H  hostile burst (pure) one citizen's burst, 2,000 held vs 200 held (no services)

Writes bench/results/latest.json and prints a table. Not a test: numbers depend on the machine.

    .venv/bin/python -m bench.run              # the full run (P2 on 500k events)
    .venv/bin/python -m bench.run --quick      # a short development run
    .venv/bin/python -m bench.run --only P2,P3
    .venv/bin/python -m bench.run --only G     # starts no services
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    FULL,
    QUICK,
    RESULTS,
    Result,
    Sizes,
    attempt,
    listed,
    markdown,
    say,
    services,
    show,
    write,
)

SERVICE_PARTS = {"P1", "P2", "P3", "P4", "P5", "P6", "M"}


def run_services(
    workdir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    only: set[str],
    results: list[Result],
    meta: dict[str, Any],
) -> None:
    """The parts that need Kafka and PostgreSQL, in order (P4 uses P2's figure, P6 P1's)."""
    from bench.metrics_cost import metrics_cost
    from bench.p1_publish import p1
    from bench.p2_fold import p2
    from bench.p3_sink import p3
    from bench.p4_latency import P4_LOW, p4, p4_rate
    from bench.p5_state import p5
    from bench.p6_replay import p6

    with services(workdir) as s:
        raw_rate = None
        p2_one: float | None = None  # read by P4's step when it runs, after P2's
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("P1", lambda: p1(s, sizes.p1)),
            ("P2", lambda: p2(s, sizes.p2, workdir, args.p2_faust_only)),
            ("P3", lambda: p3(s, sizes.p3)),
            ("P4", lambda: p4(s, sizes.p4_seconds, p4_rate(p2_one, sizes.p4_rate), workdir)),
            ("P4", lambda: p4(s, min(60, sizes.p4_seconds), P4_LOW, workdir)),
            ("P5", lambda: p5(s, sizes.p5, workdir, tuple(args.p5_stores.split(",")))),
            ("M", lambda: metrics_cost(s, sizes.m, workdir)),
        ]
        for name, step in steps:
            if name not in only and not (name == "P1" and "P6" in only):
                continue
            got = attempt(name, step)
            if name == "P1" and isinstance(got, tuple):
                got, raw_rate = got
            got = listed(got)
            if name == "P2":  # its first result is one faust worker's rate (None: failed)
                p2_one = got[0].value
            results.extend(got)
            write(results, meta)
        if "P6" in only and raw_rate is not None:
            rate = raw_rate
            results.extend(listed(attempt("P6", lambda: p6(s, sizes.p6, rate, workdir))))
            write(results, meta)


def parser() -> argparse.ArgumentParser:
    """The bench's flags."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Smaller sizes (P2 100k, P4 20 s, G 50k).")
    ap.add_argument(
        "--only", default="G,H,P1,P2,P3,P4,P5,P6,M", help="Comma-separated parts to run."
    )
    ap.add_argument("--p2-events", type=int, help="Override P2's event count.")
    ap.add_argument(
        "--p2-faust-only", action="store_true", help="Development: P2's faust worker alone."
    )
    ap.add_argument("--p4-seconds", type=float, help="Override P4's duration.")
    ap.add_argument("--g-events", type=int, help="Override G's history (baseline: a tenth).")
    ap.add_argument(
        "--p5-citizens", help="Override P5's sizes, comma-separated (e.g. 100000,1000000)."
    )
    ap.add_argument(
        "--p5-stores", default="memory://,rocksdb://", help="P5's faust stores, comma-separated."
    )
    ap.add_argument(
        "--markdown", action="store_true", help="Print latest.json as a Markdown table and exit."
    )
    return ap


def chosen_sizes(args: argparse.Namespace) -> Sizes:
    """:data:`QUICK` or :data:`FULL`, with the flags' overrides."""
    sizes = replace(QUICK if args.quick else FULL)
    if args.p2_events:
        sizes.p2 = args.p2_events
    if args.p4_seconds:
        sizes.p4_seconds = args.p4_seconds
    if args.g_events:
        sizes.g = args.g_events
    if args.p5_citizens:
        sizes.p5 = tuple(int(x) for x in args.p5_citizens.split(","))
    return sizes


def main() -> None:
    """Run the chosen parts, writing ``latest.json`` after each, then print the table."""
    args = parser().parse_args()
    if args.markdown:
        latest = RESULTS / "latest.json"
        if not latest.exists():
            sys.exit(f"error: no {latest} yet\nfix: run a bench first (make bench ARGS=--quick)")
        print(markdown(json.loads(latest.read_text())))
        return
    sizes = chosen_sizes(args)
    only = {p.strip().upper() for p in args.only.split(",")}
    workdir = Path(tempfile.mkdtemp(prefix="moisson-bench-"))
    results: list[Result] = []
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "mode": "quick" if args.quick else "full",
        "sizes": asdict(sizes),
    }
    try:
        if "G" in only:  # pure and in-process: it needs no services, so it runs first
            from bench.growth import growth

            say(f"G: one citizen's history, {sizes.g // 10:,} against {sizes.g:,} events")
            results.extend(listed(attempt("G", lambda: growth(sizes.g))))
            write(results, meta)
        if "H" in only:
            from bench.hostile import hostile

            say("H: one citizen's hostile burst, 200 against 2,000 held events")
            results.extend(listed(attempt("H", hostile)))
            write(results, meta)
        if only & SERVICE_PARTS:
            run_services(workdir, sizes, args, only, results, meta)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    show(results, meta)


if __name__ == "__main__":
    main()
