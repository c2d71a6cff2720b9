"""The oracle: what the pipeline must end with, from the fold functions the agent uses.

Pure (no faust, Kafka or SQLAlchemy: an import-linter contract). One home for three
uses: the simulated city asks it, event by event, who is blacklisted (its inline
sanctions); ``moisson verify`` asks it for the plan and doubles of everything a replay
delivers; the demo folds what it published under its ethics toggles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from processors.core.fold import Double, Event, default_rules, fold
from processors.core.horizon import Horizon
from processors.core.planning import Folding, Incoming, Plan, Position, plan_batch
from processors.core.privacy import Privacy
from processors.core.scoring import Rulebook
from schemas.codec import IdResolver


class Observed(Protocol):
    """A sensor event: its kind and its decoded record (``SensorEvent``, ``Event``)."""

    @property
    def kind(self) -> str: ...

    @property
    def record(self) -> Mapping[str, Any]: ...


class Oracle:
    """Folds events one by one into the doubles the harvester must hold.

    ``privacy`` applies the harvester's ethics toggles (kinds not harvested are
    skipped, ids pseudonymised); ``doubles`` is keyed by the id the harvester keeps.
    """

    def __init__(self, rules: Rulebook | None = None, privacy: Privacy | None = None) -> None:
        self.rules = rules
        self.privacy = privacy
        self.doubles: dict[str, Double] = {}

    def is_blacklisted(self, citizen_id: str) -> bool:
        """Whether the fold of the events observed so far blacklists ``citizen_id``."""
        if self.privacy is not None:
            citizen_id = self.privacy.pseudonym(citizen_id)
        d = self.doubles.get(citizen_id)
        return bool(d and d["blacklisted"])

    def observe(self, event: Observed) -> None:
        """Fold one event into its citizen's double."""
        kind, record = event.kind, event.record
        if self.privacy is not None:
            if not self.privacy.harvests(kind):
                return
            record = self.privacy.apply(record)
        cid = str(record["citizen_id"])
        self.doubles[cid] = fold(self.doubles.get(cid), Event(kind, record), self.rules)

    def observe_all(self, events: Iterable[Observed]) -> dict[str, Double]:
        """Fold every event in order; the doubles they give."""
        for event in events:
            self.observe(event)
        return self.doubles

    def expected_plan(
        self,
        messages: Sequence[Incoming],
        kinds: Mapping[str, str],
        lateness_s: float | None = None,
        resolver: IdResolver | None = None,
        partitioner: Callable[[bytes, int], int] | None = None,
        partitions: Callable[[str], int | None] = lambda topic: None,
    ) -> Plan:
        """The processor's own planner over ``messages`` (all a replay delivers, in
        offset order) in one batch: the same validation, lateness and fold, rejects and
        duplicates included. Nothing is evicted, which changes no result
        (``processors.core.horizon.Horizon``). ``kinds``: topic -> the sensor kind it carries;
        ``partitioner`` and ``partitions(topic)``: the partition check, as the worker's.
        """
        horizon = Horizon.of(self.rules or default_rules(), lateness_s)
        folding = Folding(
            kinds=kinds,
            rules=self.rules,
            privacy=self.privacy,
            horizon=horizon,
            resolver=resolver,
            partitioner=partitioner,
        )
        return plan_batch(
            messages, lambda _src: Position(), lambda c, i: None, folding, partitions=partitions
        )

    def expected_doubles(
        self,
        messages: Sequence[Incoming],
        kinds: Mapping[str, str],
        lateness_s: float | None = None,
        resolver: IdResolver | None = None,
        partitioner: Callable[[bytes, int], int] | None = None,
        partitions: Callable[[str], int | None] = lambda topic: None,
    ) -> dict[str, Double]:
        """The doubles the pipeline must end with after ``messages``."""
        plan = self.expected_plan(messages, kinds, lateness_s, resolver, partitioner, partitions)
        return {c: d for c, (d, _) in plan.doubles.items()}
