"""The what-if lab: the same city, or the same recording, under two rulebooks.

On a seeded city each rulebook gets its own simulation, so the feedback is included:
the sensors obey that run's own blacklist (a freed citizen is not refused at the gate,
nor flagged as a blacklisted companion). A recording can only be re-scored: its events
are what they were, with the live run's sanctions baked in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from processors.core.fold import Double
from processors.core.oracle import Observed, Oracle
from processors.core.privacy import Privacy
from processors.core.scoring import Rulebook
from processors.core.whatif import Change, Distribution, compare, differing_rules, distribution

SIMULATED = (
    "Re-simulated under each rulebook: the sensors obeyed each run's own blacklist, "
    "so refusals at the gates and blacklisted companions follow the rules too."
)
RESCORED = (
    "Re-scored from a recording: the events are the ones recorded, with that run's "
    "sanctions baked in (who was refused at a gate, who was seen with a blacklisted "
    "companion). A freed citizen's refusals stay in the events; only a re-simulation "
    "(--seed/--citizens/--days) can take them away."
)


@dataclass(frozen=True)
class Run:
    """One rulebook's outcome: its doubles and their distribution."""

    rules: Rulebook
    doubles: dict[str, Double]
    events: int
    distribution: Distribution


@dataclass(frozen=True)
class WhatIf:
    """Two runs compared: which rules differ and who changes because of them."""

    mode: str  # "simulated" or "recording"
    about: str
    note: str
    live: Run
    variant: Run
    rules: list[tuple[str, int | None, int | None]]
    changes: list[Change]
    names: Mapping[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]


def _run(rules: Rulebook, events: Iterable[Observed], oracle: Oracle, width: int = 100) -> Run:
    n = 0
    for event in events:
        oracle.observe(event)
        n += 1
    return Run(rules, oracle.doubles, n, distribution(oracle.doubles, rules, width))


def _compared(mode: str, about: str, live: Run, variant: Run, names: Mapping[str, str]) -> WhatIf:
    return WhatIf(
        mode=mode,
        about=about,
        note=SIMULATED if mode == "simulated" else RESCORED,
        live=live,
        variant=variant,
        rules=differing_rules(live.rules, variant.rules),
        changes=compare(live.doubles, variant.doubles, live.rules, variant.rules),
        names=names,
    )


def simulate(
    seed: int,
    citizens: int,
    days: int,
    live: Rulebook,
    variant: Rulebook,
    scenario: str | None = "lulu",
    progress: Callable[[str], None] | None = None,
) -> WhatIf:
    """The seeded city lived twice, once under each rulebook."""
    from producers.city import City

    runs = []
    for label, rules in (("live rules", live), ("variant", variant)):
        if progress:
            progress(f"simulating {days} day(s) of {citizens:,} citizens under the {label}")
        oracle = Oracle(rules)
        city = City(seed, citizens, scenario=scenario)
        runs.append(_run(rules, city.events(days, oracle), oracle))
    names = {p.id: p.name for p in city.people}
    cast = f" plus the cast of {scenario!r}" if scenario else ""
    about = f"seed {seed}, {citizens:,} citizens{cast}, {days} simulated day(s)"
    return _compared("simulated", about, runs[0], runs[1], names)


def rescore(
    directory: Path,
    live: Rulebook,
    variant: Rulebook,
    progress: Callable[[str], None] | None = None,
) -> WhatIf:
    """A recording's events folded under each rulebook (no feedback: see RESCORED).

    The recording is untrusted: it is checked whole (RecordingError) before any work.
    """
    from moisson.ops.recording import open_recording
    from moisson.ops.verify import expected_doubles

    rec = open_recording(directory)
    rec.check()
    runs = []
    for label, rules in (("live rules", live), ("variant", variant)):
        if progress:
            progress(f"re-scoring {directory} under the {label}")
        doubles = expected_doubles(rec, rules)
        events = sum(d["version"] for d in doubles.values())
        runs.append(Run(rules, doubles, events, distribution(doubles, rules)))
    return _compared("recording", f"the recording {directory}", runs[0], runs[1], {})


def rescore_events(
    events: Iterable[Observed],
    live: Rulebook,
    variant: Rulebook,
    privacy: Privacy | None = None,
    width: int = 100,
) -> WhatIf:
    """Events already in hand (the dashboard's tail of the current run) under each
    rulebook, with the harvester's ethics toggles (``privacy``) applied; histogram
    bands ``width`` points wide."""
    kept = list(events)
    runs = [_run(rules, kept, Oracle(rules, privacy), width) for rules in (live, variant)]
    return _compared("recording", "the current run's events", runs[0], runs[1], {})
