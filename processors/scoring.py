"""Declarative scoring rules: which events move the score, by how much, and why.

Pure: reads a TOML file, imports no faust, Kafka or SQLAlchemy.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.toml")
KINDS = ("metro", "payment", "book", "camera")


class RulesError(ValueError):
    """A rules file that cannot be used, with the file and the reason."""


@dataclass(frozen=True)
class Rule:
    """Fires on an event of ``kind`` whose fields equal every value in ``when``."""

    id: str
    kind: str
    when: Mapping[str, Any]
    delta: int
    explanation: str
    mirrors: str
    source: str

    def matches(self, kind: str, record: Mapping[str, Any]) -> bool:
        return kind == self.kind and all(record.get(k) == v for k, v in self.when.items())


@dataclass(frozen=True)
class Rulebook:
    """All rules plus the score's starting point and the blacklist threshold."""

    base_score: int
    blacklist_threshold: int
    rules: tuple[Rule, ...]
    by_kind: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grouped = {k: tuple(r for r in self.rules if r.kind == k) for k in KINDS}
        object.__setattr__(self, "by_kind", grouped)

    def hits(self, kind: str, record: Mapping[str, Any]) -> list[Rule]:
        """The rules an event fires, in file order."""
        return [r for r in self.by_kind.get(kind, ()) if r.matches(kind, record)]

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def load_rules(path: Path | str | None = None) -> Rulebook:
    """Load and validate a rules file (the shipped one by default)."""
    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"{path}: {exc}") from exc
    rules = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("rule", [])):
        missing = {"id", "kind", "delta", "explanation", "mirrors", "source"} - raw.keys()
        if missing:
            raise RulesError(f"{path}: rule #{i + 1} lacks {', '.join(sorted(missing))}")
        if raw["kind"] not in KINDS:
            raise RulesError(f"{path}: rule {raw['id']!r} has unknown kind {raw['kind']!r}")
        if raw["id"] in seen:
            raise RulesError(f"{path}: rule id {raw['id']!r} appears twice")
        seen.add(raw["id"])
        rules.append(
            Rule(
                id=raw["id"],
                kind=raw["kind"],
                when=dict(raw.get("when", {})),
                delta=int(raw["delta"]),
                explanation=raw["explanation"],
                mirrors=raw["mirrors"],
                source=raw["source"],
            )
        )
    try:
        return Rulebook(
            base_score=int(data["base_score"]),
            blacklist_threshold=int(data["blacklist_threshold"]),
            rules=tuple(rules),
        )
    except KeyError as exc:
        raise RulesError(f"{path}: missing top-level key {exc}") from exc
