"""The fetcher's per-message hand-over without four tasks: the callback is awaited
directly unless the flow is suspended, then faust's own ``wait_first`` decides."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from unittest import mock


async def test_the_callback_is_awaited_directly_while_the_flow_runs():
    from processors.engine.faust_patches import wait_first_fast

    consumer = SimpleNamespace(suspend_flow=asyncio.Event(), should_stop=False)
    got = []

    async def callback(message):
        got.append(message)
        return "put"

    with mock.patch("processors.engine.faust_patches.Service.wait_first") as slow:
        res = await wait_first_fast(consumer, callback("m1"), consumer.suspend_flow.wait())
    assert got == ["m1"] and res.results == ["put"] and not res.stopped
    slow.assert_not_called()


async def test_a_suspended_flow_goes_to_faust_s_own_wait_first():
    from processors.engine.faust_patches import wait_first_fast

    consumer = SimpleNamespace(suspend_flow=asyncio.Event(), should_stop=False)
    consumer.suspend_flow.set()

    async def callback(message):
        raise AssertionError("not here")

    async def slow(self, *coros, timeout=None):
        for c in coros:
            c.close()
        return "faust"

    with mock.patch("processors.engine.faust_patches.Service.wait_first", slow):
        res = await wait_first_fast(consumer, callback("m1"), consumer.suspend_flow.wait())
    assert res == "faust"
