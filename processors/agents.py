"""The harvester's faust registrations: :func:`register` puts its agent (on the sensor
topics), its timer and its revocation hook on an app. Importing this module does not."""

from __future__ import annotations

from processors.app import HarvestApp
from processors.harvester import Deps, Harvester

# The names the module-level agent and timer had; faust logs them.
AGENT_NAME = "processors.agents.harvest"
TIMER_NAME = "processors.agents.keep_positions"


def register(app: HarvestApp, deps: Deps) -> Harvester:
    """Register a harvester on ``app`` (made by :func:`processors.app.create_app`): its
    agent consumes the sensor topics, its timer keeps positions every second, and it
    forgets revoked partitions. Its state lives in the returned :class:`Harvester`."""
    harvester = Harvester(app, deps)
    harvester.agent = app.agent(app.sensor_topics, name=AGENT_NAME)(harvester.harvest)
    app.timer(1.0, name=TIMER_NAME)(harvester.keep_positions)
    app.on_partitions_revoked.connect(harvester.forget_revoked)  # type: ignore[arg-type]
    return harvester
