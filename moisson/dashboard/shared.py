"""Work the dashboard does once for everyone: the overview at most once a second
whatever the number of browsers, and one What if at a time, cached.

Both run off the event loop, so the other routes answer while they compute.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

#: What if computations waiting or running at once (distinct ones; the same one is shared).
WHATIF_PENDING = 4
#: What if results kept, newest used first.
WHATIF_CACHED = 8


class Busy(Exception):
    """Too many What if computations are already waiting."""


class Fresh(Generic[T]):
    """A value computed in a thread at most once per ``ttl`` seconds, however many ask.

    Who asks while the next value is computed gets the latest one if it is under
    ``stale`` seconds old (a slow database or a busy CPU does not hold the page up), or
    else waits for that one computation (and sees its error).
    """

    def __init__(self, compute: Callable[[], T], ttl: float = 1.0, stale: float = 5.0) -> None:
        self.compute, self.ttl, self.stale = compute, ttl, stale
        self.computed = 0
        self._last: tuple[float, T] | None = None  # (when it began, the value)
        self._task: asyncio.Task[T] | None = None

    async def get(self) -> T:
        last = self._last
        age = time.monotonic() - last[0] if last is not None else float("inf")
        if last is not None and age < self.ttl:
            return last[1]
        if self._task is None:
            self._task = asyncio.ensure_future(self._refresh())
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if last is not None and age < self.stale:
            return last[1]
        return await asyncio.shield(self._task)

    async def _refresh(self) -> T:
        started = time.monotonic()
        try:
            value = await asyncio.to_thread(self.compute)
        finally:
            self._task = None
        self.computed += 1
        self._last = (started, value)
        return value


class Each(Generic[T]):
    """A :class:`Fresh` value per key (a citizen's page), the ``size`` latest keys kept."""

    def __init__(self, compute: Callable[[str], T], ttl: float = 1.0, size: int = 256) -> None:
        self.compute, self.ttl, self.size = compute, ttl, size
        self._fresh: OrderedDict[str, Fresh[T]] = OrderedDict()

    async def get(self, key: str) -> T:
        fresh = self._fresh.get(key)
        if fresh is None:
            fresh = self._fresh[key] = Fresh(lambda: self.compute(key), self.ttl)
            while len(self._fresh) > self.size:
                self._fresh.popitem(last=False)
        self._fresh.move_to_end(key)
        return await fresh.get()


class OneAtATime(Generic[T]):
    """Computations on one thread of their own, one at a time, results cached by key.

    Requests for a key being computed share that computation; at most ``pending``
    distinct ones wait or run (the next raises :class:`Busy`); the ``cached`` latest
    results are kept.
    """

    def __init__(self, pending: int = WHATIF_PENDING, cached: int = WHATIF_CACHED) -> None:
        self.pending, self.cached = pending, cached
        self.computed = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatif")
        self._results: OrderedDict[Hashable, T] = OrderedDict()
        self._running: dict[Hashable, asyncio.Future[T]] = {}

    async def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The result for ``key``: cached, being computed, or computed by ``compute``."""
        if key in self._results:
            self._results.move_to_end(key)
            return self._results[key]
        future = self._running.get(key)
        if future is None:
            if len(self._running) >= self.pending:
                raise Busy
            future = asyncio.get_running_loop().run_in_executor(self._pool, compute)
            self._running[key] = future
            future.add_done_callback(lambda f: self._done(key, f))
        return await asyncio.shield(future)

    def _done(self, key: Hashable, future: asyncio.Future[T]) -> None:
        del self._running[key]
        self.computed += 1
        if future.cancelled() or future.exception() is not None:
            return
        self._results[key] = future.result()
        while len(self._results) > self.cached:
            self._results.popitem(last=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
