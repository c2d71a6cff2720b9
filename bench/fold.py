"""Benchmark: events/s of the pure fold alone, against a raw baseline in the same run.

The baseline is the cheapest per-citizen work imaginable over the same events (one
counter per citizen in a dict); the ratio says what the double, the rules, the ledger
and the blacklist cost on top. Not a test: numbers depend on the machine.

    .venv/bin/python -m bench.fold [--citizens 1000] [--days 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from processors.core.fold import Event, fold_all
from processors.core.oracle import Oracle
from producers.city import generate_events


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--citizens", type=int, default=1000)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    started = time.perf_counter()
    events = [
        Event(e.kind, e.record)
        for e in generate_events(1, args.citizens, days=args.days, sanctions=Oracle())
    ]
    generation = time.perf_counter() - started

    def raw() -> None:
        counts: dict[str, int] = {}
        for e in events:
            cid = e.record["citizen_id"]
            counts[cid] = counts.get(cid, 0) + 1

    raw_s = best_of(args.repeat, raw)
    fold_s = best_of(args.repeat, lambda: fold_all(events))
    n = len(events)
    result = {
        "id": "fold",
        "value": round(n / fold_s),
        "unit": "events/s",
        "baseline": round(n / raw_s),
        "ratio": round(raw_s / fold_s, 4),
        "events": n,
        "citizens": args.citizens,
        "generation_events_per_s": round(n / generation),
        "note": "baseline: one dict counter per citizen over the same events",
    }
    out = Path(__file__).parent / "results" / "fold.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"fold: {result['value']:,} ev/s; raw baseline {result['baseline']:,} ev/s; "
        f"ratio {result['ratio']:.4f} ({n:,} events, {args.citizens:,} citizens); "
        f"simulation with inline oracle {result['generation_events_per_s']:,} ev/s"
    )


if __name__ == "__main__":
    main()
