"""Part G: what one citizen costs as its history grows, with bounded state (pure, no Kafka).

One citizen gets realistic events of all four kinds: city templates re-stamped with
fresh UUID ids, the citizen's id and times exactly ``RATE`` per day apart, in time
order. Each event is folded (``fold_entries``), the double evicted at floor = the
latest event time so far (every source live at the same pace), then encoded as the
processor sends it: the double (the table's changelog; one message per touched
citizen per batch, so one per event here) and each new ledger entry.

Over a stretch of events ending at ``N / 10`` and at ``N`` events of history it
measures the per-event cost of fold + evict + encoding (see :func:`stretches` for how
it is timed), the bytes sent per event, and the state the citizen keeps (its encoded
double). The ``N / 10`` figures are the baselines: ratios in the same run, never
absolute timings. The baseline stretch should start once the horizon is full (lateness
+ two correlation windows: 21 days, 1,050 events at 50 a day), else it is still growing.

    python -m bench.growth                     # 10k vs 100k events of history
    python -m bench.growth --events 40000      # a quicker run (4k vs 40k)
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import Result
from processors.core.fold import Double, Event, fold_entries
from processors.core.held import HELD
from processors.core.horizon import Horizon, evict
from processors.core.scoring import Rulebook, load_rules
from schemas.codec import DOUBLE, LEDGER, encode

#: Events per citizen per day (the city itself averages about 8).
RATE = 50
CITIZEN = "c0999999"
START = datetime(2026, 3, 2, tzinfo=UTC)
#: The double's lifetime counters by key: bounded only by the distinct keys in the data.
AGGREGATE_FIELDS = ("places", "purchases", "books", "sightings", "associates", "rule_hits")
#: Ratio targets, history N against N / 10.
TARGETS = {"cost": 1.2, "bytes": 1.2, "state": 1.1}


def templates(seed: int, citizens: int = 200, days: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of a small city's events: the realistic mix the citizen draws from."""
    from producers.city import generate_events

    pool = [(e.kind, dict(e.record)) for e in generate_events(seed, citizens, days=days)]
    kinds = {k for k, _ in pool}
    if kinds != {"metro", "payment", "book", "camera"}:
        raise RuntimeError(f"the template city lacks some kinds: it has {sorted(kinds)}")
    return pool


def citizen_events(seed: int, rate: int = RATE, citizen: str = CITIZEN) -> Iterator[Event]:
    """One citizen's endless history: random templates, fresh ids, ``rate`` per day."""
    rng = random.Random(seed)
    pool = templates(seed)
    step = timedelta(days=1) / rate
    i = 0
    while True:
        kind, record = rng.choice(pool)
        yield Event(
            kind,
            {
                **record,
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "citizen_id": citizen,
                "occurred_at": START + i * step,
            },
        )
        i += 1


@dataclass
class Stretch:
    """What a stretch of events cost, sent and left behind."""

    history: int  # events folded by the end of the stretch
    events: int
    seconds: float  # fold + evict + encoding: the sum of each chunk's best time
    sent_bytes: int  # encoded doubles + ledger messages
    ledger_messages: int
    double_bytes_mean: float
    double_bytes_max: int
    double_bytes_end: int
    held: int  # at the end: event ids, ledger entries, marks
    ledger: int
    marks: int
    aggregate_keys: int  # never evicted: places, purchases, books, sightings, associates...

    @property
    def us_per_event(self) -> float:
        return self.seconds / self.events * 1e6

    @property
    def bytes_per_event(self) -> float:
        return self.sent_bytes / self.events


def advance(double: Double | None, event: Event, horizon: Horizon, rules: Rulebook) -> Double:
    """Fold and evict one event, as the processor does, without encoding; events come
    in time order, so the floor (the latest event time so far) is this event's time."""
    d, _ = fold_entries(double, event, rules)
    return evict(d, event.record["occurred_at"], horizon, rules)


def run_stretch(
    double: Double | None, events: list[Event], horizon: Horizon, rules: Rulebook
) -> tuple[float, Double, list[int], list[int]]:
    """Fold, evict and encode ``events`` from ``double`` as the processor does: (seconds,
    the last double, each encoded double's size, each ledger message's size)."""
    doubles: list[int] = []
    ledger: list[int] = []
    d = double
    started = time.perf_counter()
    for event in events:  # in time order: the floor is this event's time
        d, entries = fold_entries(d, event, rules)
        d = evict(d, event.record["occurred_at"], horizon, rules)
        doubles.append(len(encode(DOUBLE, d)))
        for e in entries:
            ledger.append(len(encode(LEDGER, {"citizen_id": d["citizen_id"], **e})))
    seconds = time.perf_counter() - started
    assert d is not None
    return seconds, d, doubles, ledger


def stretches(
    events: int, stretch: int, repeat: int = 5, seed: int = 3, rate: int = RATE, chunk: int = 100
) -> tuple[Stretch, Stretch]:
    """The stretches ending at ``events // 10`` and at ``events`` events of history.

    Both stretches are cut into chunks of ``chunk`` events, each with its start double
    (the fold is pure: every run of a chunk from it is the same work). The chunks are
    then timed in turns, the two stretches alternating, ``repeat`` times, and each
    chunk's best time kept: on a shared machine a short chunk often runs undisturbed,
    and a busy neighbour slows both stretches alike."""
    base_end = events // 10
    stretch = min(stretch, base_end)
    if stretch < 1:
        raise ValueError(f"--events {events:,} is too short for a stretch")
    rules = load_rules()
    horizon = Horizon.of(rules)
    stream = citizen_events(seed, rate)
    double: Double | None = None
    done = 0
    chunks: list[list[tuple[Double | None, list[Event]]]] = []
    sizes: list[tuple[list[int], list[int], Double]] = []
    for end in (base_end, events):
        for _ in range(end - stretch - done):
            double = advance(double, next(stream), horizon, rules)
        parts, doubles, ledger = [], [], []
        for at in range(0, stretch, chunk):
            batch = [next(stream) for _ in range(min(chunk, stretch - at))]
            parts.append((double, batch))
            _, double, d_sizes, l_sizes = run_stretch(double, batch, horizon, rules)
            doubles += d_sizes
            ledger += l_sizes
        assert double is not None
        chunks.append(parts)
        sizes.append((doubles, ledger, double))
        done = end
    best = [[float("inf")] * len(parts) for parts in chunks]
    for _ in range(max(1, repeat)):
        gc.collect()
        for j in range(len(chunks[0])):
            for i, parts in enumerate(chunks):
                seconds = run_stretch(*parts[j], horizon, rules)[0]
                best[i][j] = min(best[i][j], seconds)
    out = [
        Stretch(
            history=end,
            events=stretch,
            seconds=sum(times),
            sent_bytes=sum(doubles) + sum(ledger),
            ledger_messages=len(ledger),
            double_bytes_mean=sum(doubles) / len(doubles),
            double_bytes_max=max(doubles),
            double_bytes_end=doubles[-1],
            held=len(d["recent_events"]) // HELD,
            ledger=len(d["ledger"]),
            marks=len(d["marks"]),
            aggregate_keys=sum(len(d[k]) for k in AGGREGATE_FIELDS),
        )
        for end, times, (doubles, ledger, d) in zip((base_end, events), best, sizes, strict=True)
    ]
    return out[0], out[1]


def results(base: Stretch, grown: Stretch, rate: int = RATE) -> list[Result]:
    """The three ratios, grown history against the baseline history."""
    common = {
        "rate_per_day": rate,
        "stretch_events": grown.events,
        "history_baseline": base.history,
        "history": grown.history,
    }

    def result(
        key: str, name: str, unit: str, value: float, baseline: float, extra: dict[str, Any]
    ) -> Result:
        ratio = value / baseline
        return Result(
            f"G {name}",
            round(value, 1),
            unit,
            round(baseline, 1),
            round(ratio, 3),
            f"≤ {TARGETS[key]} × at {base.history:,} events of history",
            ratio <= TARGETS[key],
            {**common, **extra},
        )

    return [
        result(
            "cost",
            "cost per event",
            "µs (fold + evict + encoding)",
            grown.us_per_event,
            base.us_per_event,
            {"note": "sum over 100-event chunks of each chunk's best of repeated runs; no Kafka"},
        ),
        result(
            "bytes",
            "bytes sent per event",
            "bytes",
            grown.bytes_per_event,
            base.bytes_per_event,
            {
                "ledger_messages": grown.ledger_messages,
                "ledger_messages_baseline": base.ledger_messages,
                "note": "the double (changelog = doubles topic) + new ledger entries",
            },
        ),
        result(
            "state",
            "state per citizen",
            "bytes (encoded double, stretch mean)",
            grown.double_bytes_mean,
            base.double_bytes_mean,
            {
                f"{label}_{field}": getattr(s, field)
                for label, s in (("baseline", base), ("grown", grown))
                for field in (
                    "double_bytes_max",
                    "double_bytes_end",
                    "held",
                    "ledger",
                    "marks",
                    "aggregate_keys",
                )
            },
        ),
    ]


def growth(events: int = 100_000, stretch: int = 2000, repeat: int = 5) -> list[Result]:
    """Part G of bench/run.py: the three growth ratios."""
    return results(*stretches(events, stretch, repeat))


def show(base: Stretch, grown: Stretch, out: list[Result]) -> None:
    """Both stretches' absolute figures, then the ratios against their targets."""
    rows = [
        ("µs per event", "us_per_event", ".1f"),
        ("bytes sent per event", "bytes_per_event", ",.0f"),
        ("encoded double, mean", "double_bytes_mean", ",.0f"),
        ("encoded double, max", "double_bytes_max", ","),
        ("held event ids", "held", ","),
        ("ledger entries", "ledger", ","),
        ("marks", "marks", ","),
        ("aggregate keys", "aggregate_keys", ","),
        ("ledger messages", "ledger_messages", ","),
    ]
    print(f"{'history':<24}{base.history:>14,}{grown.history:>14,}")
    for label, attr, fmt in rows:
        a, b = getattr(base, attr), getattr(grown, attr)
        print(f"{label:<24}{format(a, fmt):>14}{format(b, fmt):>14}")
    print()
    for r in out:
        met = "yes" if r.met else "NO"
        print(f"{r.id:<26} ratio {r.ratio:.3f}  target {r.target}  met: {met}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000, help="History at the end (N).")
    ap.add_argument("--stretch", type=int, default=2000, help="Events measured per stretch.")
    ap.add_argument("--repeat", type=int, default=5, help="Timed runs per chunk (best).")
    args = ap.parse_args()
    h = Horizon.of(load_rules())
    fill = round((h.lateness + 2 * h.window) / timedelta(days=1) * RATE)
    if args.events // 10 - args.stretch < fill:
        print(f"note: the baseline stretch starts before the horizon fills ({fill:,} events)")
    base, grown = stretches(args.events, args.stretch, args.repeat)
    show(base, grown, results(base, grown))


if __name__ == "__main__":
    main()
