"""The harvester's batches: many events in one batch give the same doubles as one by one."""

from __future__ import annotations

import asyncio

from processors.core.fold import Event, fold_all
from producers.city import generate_events


async def test_a_batch_folds_like_the_oracle_and_sends_each_citizen_once(harvester):
    agent, _table, sent = harvester
    assert agent.harvester.deps.batch_size > 1, "batches are the default"
    events = list(generate_events(8, 6, 120))
    # Without waiting, the events queue up and the agent takes them in batches.
    for ev in events:
        await agent.put(key=ev.citizen_id.encode(), value=ev.encode(), wait=False)
    expected = fold_all(Event(e.kind, e.record) for e in events)
    last: dict[str, dict] = {}
    for _ in range(200):
        last = {k.decode(): v for k, v in sent}
        if len(last) == len(expected) and all(
            last[c]["version"] == d["version"] for c, d in expected.items()
        ):
            break
        await asyncio.sleep(0.05)
    assert set(last) == set(expected)
    for cid, double in expected.items():
        assert last[cid] == double, cid
    # Coalesced: at most one double per citizen per batch, so fewer sends than events.
    assert len(sent) < len(events)
    versions = [v["version"] for _, v in sent]
    assert all(v > 0 for v in versions)
