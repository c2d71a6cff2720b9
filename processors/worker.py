"""The worker's entry point: ``faust -A processors.worker worker`` (or ``moisson process``).

The only module of the processor that reads the environment: :func:`build` turns
settings into a ready app, and ``app`` is built from the environment when faust asks.
"""

from __future__ import annotations

from typing import Any

from moisson.schema_registry import install_resolver
from moisson.settings import Settings
from processors.agents import register
from processors.app import HarvestApp, create_app
from processors.batch import Folding
from processors.harvest import Limits
from processors.horizon import Horizon
from processors.privacy import Privacy
from processors.scoring import load_rules

app: HarvestApp  # built on first access, see __getattr__


def folding_of(settings: Settings) -> Folding:
    """What the planner needs: the kinds, the rules, the ethics toggles, the limits."""
    p = settings.processor
    rules = load_rules(p.rules_path)
    secret = p.pseudonymise_key.get_secret_value() if p.pseudonymise_key else None
    return Folding(
        kinds=settings.topics.kind_of,
        rules=rules,
        privacy=Privacy.of(p.harvest_kinds, secret),
        limits=Limits(max_message_bytes=p.max_message_bytes),
        horizon=Horizon.of(rules, p.lateness_s),
    )


def build(settings: Settings) -> HarvestApp:
    """The harvester's app from ``settings``, its agents registered."""
    install_resolver(settings)  # registry mode: sensor messages may name their schema by id
    app = create_app(settings)
    register(app, settings, folding_of(settings))
    return app


def __getattr__(name: str) -> Any:
    """``app``, for faust's ``-A processors.worker``: built from the environment once."""
    if name == "app":
        global app
        app = build(Settings())
        return app
    raise AttributeError(name)
