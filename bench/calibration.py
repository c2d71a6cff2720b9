"""Calibration report: the share of a default city the blacklist takes, seed by seed.

Not a test and not a benchmark: a report of where the scores of a week of the default
city lie, without the scripted cast (no Lulu, no Mei), for a few seeds. For each seed it
prints the share blacklisted, how many citizens are within ``NEAR_FLOOR`` points of the
bottom of the scale, the percentiles and a text histogram, and it writes the whole as
JSON (``bench/results/calibration.json`` unless ``--json`` says where).

It reuses what ``tests/producers/test_calibration.py`` uses (``City``, ``Oracle``,
``default_rules`` and ``processors.core.whatif.distribution``) and scores nothing itself: the
sensors obey the oracle's blacklist as it grows, so the feedback (refused at the gate,
seen with a blacklisted companion) is included. The target band is the share of China's
population aged 15 and over on the court defaulter list (README: The calibrated scale).

    .venv/bin/python -m bench.calibration            # 5,000 citizens, 7 days, seeds 42 1 7
    .venv/bin/python -m bench.calibration --citizens 1000 --seeds 42
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from processors.core.fold import default_rules
from processors.core.oracle import Oracle
from processors.core.scoring import DEFAULT_RULES_PATH, Rulebook
from processors.core.whatif import NEAR_FLOOR, Distribution, distribution
from producers.city import City

OUT = Path(__file__).parent / "results" / "calibration.json"
#: The target: 13.3 M (SPC, 2019-03-13) to 14.5 M (Legal Daily) of 1,158 M aged 15+.
TARGET = (0.0115, 0.0125)
#: The band tests/producers/test_calibration.py requires: the target widened by a third.
BAND = (0.008, 0.016)
BAR = 50  # characters for the largest band of the histogram
DAY_MS = 86_400_000


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_seed(seed: int, citizens: int, days: int, rules: Rulebook, width: int) -> dict[str, Any]:
    """One seeded week of the default city without the cast, folded by the oracle."""
    started = time.perf_counter()
    oracle = Oracle(rules)
    city = City(seed, citizens)
    events, day = 0, -1
    for event in city.events(days, oracle):
        events += 1
        at = event.record["occurred_at"]
        # A day's late-night events spill past its midnight: count them in that day.
        today = min(days - 1, (int(at.timestamp() * 1000) - city.start_ms) // DAY_MS)
        if today > day:
            day = today
            progress(
                f"  seed {seed}: day {day + 1}/{days}, {events:,} events, "
                f"{time.perf_counter() - started:,.0f} s"
            )
    d = distribution(oracle.doubles, rules, width)
    personas = {p.id: p.persona for p in city.people}
    listed = Counter(personas[c] for c, x in oracle.doubles.items() if x["blacklisted"])
    seconds = time.perf_counter() - started
    progress(f"  seed {seed}: done, {events:,} events in {seconds:,.0f} s")
    return {
        "seed": seed,
        "events": events,
        "seconds": round(seconds, 1),
        "citizens": d.citizens,
        "blacklisted": d.blacklisted,
        "share": round(d.share, 5),
        "in_band": BAND[0] <= d.share <= BAND[1],
        "near_floor": d.near_floor,
        "floor_share": round(d.floor_share, 5),
        "min": min((int(x["score"]) for x in oracle.doubles.values()), default=None),
        "max": max((int(x["score"]) for x in oracle.doubles.values()), default=None),
        "percentiles": {str(p): s for p, s in d.percentiles},
        "bands": {f"{b}-{b + width - 1}": n for b, n in d.bands},
        "blacklisted_by_persona": dict(sorted(listed.items())),
        "population_by_persona": dict(sorted(Counter(personas.values()).items())),
        "_distribution": d,
    }


def histogram(d: Distribution, width: int, rules: Rulebook) -> list[str]:
    """One line per band of the scale, bars scaled to the largest band; ``.`` is a few
    citizens, less than one character's worth. The line is drawn above the band the
    blacklist threshold starts."""
    top = max((n for _, n in d.bands), default=0) or 1
    lines = []
    for start, n in d.bands:
        line = rules.blacklist_threshold
        if start == line // width * width:
            where = "under it" if line % width == 0 else f"inside the band above, under {line}"
            lines.append(f"  {'-' * 10} {line}: {where}, blacklisted")
        bar = ("#" * round(n / top * BAR) or ".") if n else ""
        lines.append(f"  {start:>4}–{start + width - 1:<4} {n:>6,} {bar}")
    return lines[::-1]


def show(r: dict[str, Any], width: int, rules: Rulebook) -> None:
    d: Distribution = r["_distribution"]
    print(
        f"seed {r['seed']}: {r['blacklisted']:,} of {r['citizens']:,} blacklisted "
        f"({r['share']:.2%}; band {BAND[0]:.1%}–{BAND[1]:.1%}: "
        f"{'in' if r['in_band'] else 'OUT'}), {r['near_floor']} within {NEAR_FLOOR} "
        f"points of the floor; {r['events']:,} events; min {r['min']}, max {r['max']}"
    )
    print("  percentiles: " + ", ".join(f"p{p} {s}" for p, s in d.percentiles))
    if r["blacklisted_by_persona"]:
        print(
            "  blacklisted by persona: "
            + ", ".join(
                f"{k} {n} of {r['population_by_persona'][k]}"
                for k, n in r["blacklisted_by_persona"].items()
            )
        )
    print("\n".join(histogram(d, width, rules)))
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--citizens", type=int, default=5_000, help="Citizens per city (5,000).")
    ap.add_argument("--days", type=int, default=7, help="Simulated days (7).")
    ap.add_argument(
        "--seeds", type=int, nargs="+", default=[42, 1, 7], help="Seeds to run (42 1 7)."
    )
    ap.add_argument("--width", type=int, default=50, help="Points per histogram band (50).")
    ap.add_argument("--json", type=Path, default=OUT, help=f"Where to write the JSON ({OUT}).")
    args = ap.parse_args()

    rules = default_rules()
    version = tomllib.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))["version"]
    progress(
        f"calibration: {args.citizens:,} citizens × {args.days} days, seeds "
        f"{' '.join(map(str, args.seeds))}, rules version {version}, no cast"
    )
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(seed, args.citizens, args.days, rules, args.width))
        show(runs[-1], args.width, rules)

    shares = [r["share"] for r in runs]
    each = ", ".join(f"seed {r['seed']} {r['share']:.2%}" for r in runs)
    print(
        f"shares: {each}; target {TARGET[0]:.2%}–{TARGET[1]:.2%}, band {BAND[0]:.1%}–{BAND[1]:.1%}"
    )
    report = {
        "id": "calibration",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "citizens": args.citizens,
        "days": args.days,
        "seeds": args.seeds,
        "scenario": None,
        "rules_version": version,
        "scale": {
            "min": rules.score_min,
            "max": rules.score_max,
            "base": rules.base_score,
            "blacklist_under": rules.blacklist_threshold,
            "lifted_at": rules.recovery_threshold,
        },
        "near_floor_points": NEAR_FLOOR,
        "histogram_width": args.width,
        "target": {"from": TARGET[0], "to": TARGET[1]},
        "band": {"from": BAND[0], "to": BAND[1]},
        "share_mean": round(sum(shares) / len(shares), 5) if shares else None,
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        "note": (
            "A week of the default city without the scripted cast; the oracle folds every "
            "event and the sensors obey its blacklist (feedback included). The target is a "
            "cumulative national count (the court defaulter list) over the population aged "
            "15 and over, compared with one simulated week."
        ),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    progress(f"wrote {args.json}")


if __name__ == "__main__":
    main()
