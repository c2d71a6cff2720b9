"""Work done once for everyone: a value at most once a second, a computation shared
by all who ask for it, one at a time, the queue and the cache bounded."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from moisson.dashboard.shared import Busy, Each, Fresh, OneAtATime


async def test_a_fresh_value_is_computed_once_for_everyone_who_asks():
    gate = threading.Event()
    gate.set()
    calls: list[float] = []

    def compute() -> int:
        gate.wait(10)
        calls.append(time.monotonic())
        return len(calls)

    fresh = Fresh(compute, ttl=0.3, stale=60)
    assert await asyncio.gather(*(fresh.get() for _ in range(100))) == [1] * 100
    assert await fresh.get() == 1 and len(calls) == 1
    await asyncio.sleep(0.4)
    gate.clear()
    assert await asyncio.gather(*(fresh.get() for _ in range(100))) == [1] * 100, (
        "older than the ttl: the latest while the next one is computed"
    )
    gate.set()
    deadline = time.monotonic() + 10
    while await fresh.get() != 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert await fresh.get() == 2 and len(calls) == 2 and fresh.computed == 2


async def test_a_failure_is_seen_once_the_latest_value_is_too_old():
    outcomes = iter(["first", "database down", "database down", "back"])

    def compute() -> str:
        outcome = next(outcomes)
        if outcome == "database down":
            raise RuntimeError(outcome)
        return outcome

    fresh = Fresh(compute, ttl=0.1, stale=2.0)
    assert await fresh.get() == "first"
    await asyncio.sleep(0.2)
    assert await fresh.get() == "first", "under stale seconds old, while it fails"
    await asyncio.sleep(2.0)
    with pytest.raises(RuntimeError):
        await fresh.get()
    assert await fresh.get() == "back"


async def test_each_key_is_fresh_on_its_own_and_only_the_latest_keys_are_kept():
    calls: list[str] = []
    each = Each(lambda k: calls.append(k) or k.upper(), size=3)
    assert await asyncio.gather(*(each.get("a") for _ in range(20))) == ["A"] * 20
    for k in "bcde":
        await each.get(k)
    assert calls == list("abcde") and len(each._fresh) == 3


async def test_one_computation_at_a_time_shared_cached_and_the_queue_bounded():
    gate = threading.Event()
    running: list[int] = []
    seen: list[int] = []
    lock = threading.Lock()

    def compute(n: int):
        def run() -> int:
            with lock:
                running.append(n)
                seen.append(len(running))
            gate.wait(5)
            with lock:
                running.remove(n)
            return n * 10

        return run

    work = OneAtATime(pending=2, cached=2)
    first = [asyncio.ensure_future(work.get("k1", compute(1))) for _ in range(10)]
    second = asyncio.ensure_future(work.get("k2", compute(2)))
    await asyncio.sleep(0.05)
    with pytest.raises(Busy):
        await work.get("k3", compute(3))
    first[0].cancel()  # a browser that left does not cancel the others' computation
    gate.set()
    assert await asyncio.gather(*first[1:], second) == [10] * 9 + [20]
    assert seen == [1, 1] and work.computed == 2
    assert await work.get("k1", compute(99)) == 10, "cached"
    assert await work.get("k3", compute(3)) == 30
    assert list(work._results) == ["k1", "k3"], "the two latest results are kept"
    work.close()
