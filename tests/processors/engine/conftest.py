"""A fresh harvester app per test, driven by faust's own ``test_context()`` (no broker):
its own tables and harvester state, with a fake outbox injected into the harvester."""

from __future__ import annotations

import asyncio
from pathlib import Path
from unittest import mock

import pytest

from processors.engine.outbox import Sealed
from schemas.codec import DOUBLE, decode


@pytest.fixture
async def harvester(tmp_path: Path):
    from moisson.settings import Settings
    from processors.engine.agent import register
    from processors.engine.app import create_app
    from processors.worker import deps_of

    settings = Settings().replace(processor={"data_dir": tmp_path / "faust"})
    app = create_app(settings)
    app.loop = asyncio.get_running_loop()
    deps = deps_of(settings)
    topics = deps.topics
    sent: list[tuple[bytes, dict]] = []  # (key, double) written to the table: `doubles`
    dead: list[tuple[bytes, bytes, dict]] = []
    emitted: list[tuple[str, bytes, bytes, list | None]] = []

    def delivered(result=None):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(result)
        return fut

    class FakeOutbox:
        """Records what the harvester sends; every batch is acknowledged at once, with
        the base offset of a log per topic partition."""

        def __init__(self) -> None:
            self.open: dict[tuple[str, int], int] = {}
            self.ends: dict[tuple[str, int], int] = {}

        def add(self, topic, partition, key, value, headers=None):
            emitted.append((topic, key, value, headers))
            self.open[topic, partition] = self.open.get((topic, partition), 0) + 1
            if topic == topics.doubles:  # the table's changelog
                sent.append((key, decode(value, DOUBLE)[1]))
            if topic == topics.dlq:
                dead.append((key, value, dict(headers)))

        def seal(self):
            out = []
            for tp, count in self.open.items():
                base = self.ends.get(tp, 0)
                self.ends[tp] = base + count
                out.append(Sealed(tp, delivered(mock.Mock(offset=base)), count))
            self.open = {}
            return out

    async def nothing(*_, **__):
        return delivered()

    h = register(app, deps)
    h.outbox = FakeOutbox()
    app.finalize()
    app.flow_control.resume()
    with mock.patch.object(h, "flush_outputs", side_effect=nothing):
        async with h.agent.test_context() as agent:
            agent.dead = dead
            agent.emitted = emitted
            agent.harvester = h
            yield agent, app.doubles, sent
