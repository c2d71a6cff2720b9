"""The faust agent, driven by faust's own ``test_context()`` (no broker)."""

from __future__ import annotations

from processors.core.fold import Event, fold_all
from producers.city import generate_events


async def test_agent_folds_events_like_the_oracle(harvester):
    agent, _table, sent = harvester
    events = list(generate_events(5, 15, 150))
    for ev in events:
        await agent.put(key=ev.citizen_id.encode(), value=ev.encode())
    expected = fold_all(Event(e.kind, e.record) for e in events)
    # The last double sent for each citizen is the oracle's.
    last = {}
    for key, value in sent:
        last[key.decode()] = value
    assert set(last) == set(expected)
    for cid, double in expected.items():
        got = {k: v for k, v in last[cid].items() if k != "source_offsets"}
        want = {k: v for k, v in double.items() if k != "source_offsets"}
        assert got == want, cid
    assert len(sent) == len(events)


async def test_agent_survives_garbage(harvester):
    agent, _table, sent = harvester
    ev = next(iter(generate_events(6, 5, 1)))
    await agent.put(key=b"c0000001", value=b"definitely not avro")
    await agent.put(key=ev.citizen_id.encode(), value=ev.encode()[:-4])
    await agent.put(key=ev.citizen_id.encode(), value=ev.encode())
    assert len(sent) == 1
    assert sent[0][1]["version"] == 1
    # Nothing is lost: both refused messages are in the dead-letter topic, unchanged.
    assert [d[1] for d in agent.dead] == [b"definitely not avro", ev.encode()[:-4]]
    assert [d[2]["moisson.reason"] for d in agent.dead] == [b"not-single-object", b"truncated-body"]
    assert agent.dead[1][2]["moisson.offset"] == b"1"


async def test_a_redelivered_event_publishes_the_double_again(harvester):
    """After a crash the changelog may hold a double the doubles topic never got."""
    agent, _table, sent = harvester
    ev = next(iter(generate_events(6, 5, 1)))
    await agent.put(key=ev.citizen_id.encode(), value=ev.encode())
    await agent.put(key=ev.citizen_id.encode(), value=ev.encode())
    assert len(sent) == 2 and sent[0] == sent[1]
    assert sent[1][1]["version"] == 1  # the same double, not applied twice


async def test_the_batch_figures_reach_the_metrics(harvester):
    """Applied, rejected and dead-lettered events, counted once per batch."""
    agent, _table, _sent = harvester
    metrics = agent.harvester.metrics.registry
    ev = next(iter(generate_events(6, 5, 1)))
    await agent.put(key=ev.citizen_id.encode(), value=ev.encode())
    await agent.put(key=ev.citizen_id.encode(), value=ev.encode())  # a duplicate
    await agent.put(key=b"c0000001", value=b"definitely not avro")

    def value(name: str, **labels: str) -> float | None:
        return metrics.get_sample_value(name, labels or None)

    assert value("moisson_events_applied_total") == 1
    assert value("moisson_events_rejected_total", reason="duplicate") == 1
    assert value("moisson_events_rejected_total", reason="not-single-object") == 1
    assert value("moisson_dead_letters_total", reason="not-single-object") == 1
    assert value("moisson_dead_letters_total", reason="duplicate") is None  # not a dead letter
    assert value("moisson_fold_batch_seconds_count") == 3
    consumed = [
        s for f in metrics.collect() for s in f.samples if s.name == "moisson_events_consumed_total"
    ]
    assert sum(s.value for s in consumed) == 3
