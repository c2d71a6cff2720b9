"""Simulated phones: the room tested before class (``--phones N``) and the bench.

Each one is an HTTP client like a phone's browser: it joins with the code, holds its
own cookie, listens to its stream and taps. It measures, for every tap, the seconds
until its stream shows the double that includes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

#: A wandering phone's choices, with their weights (mostly everyday life).
WANDER = (
    ("metro", 3),
    ("pay", 3),
    ("book", 1),
    ("help", 1),
    ("jaywalk", 1),
    ("gathering", 0.3),
    ("walk", 1),
)


@dataclass
class PhoneStats:
    """What the phones measured."""

    to_phone: list[float] = field(default_factory=list)
    taps: int = 0
    too_fast: int = 0
    denied: int = 0
    failed: int = 0


async def sse(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The JSON of each server-sent event of ``resp``."""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            yield json.loads(line[6:])


class SimulatedPhone:
    """One phone: its own cookie jar, its stream, its taps."""

    def __init__(self, base: str, nickname: str, stats: PhoneStats, seed: int = 0) -> None:
        self.base, self.nickname, self.stats = base.rstrip("/"), nickname, stats
        self.rng = random.Random(seed)
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.me: dict[str, Any] = {}
        self.menu: list[dict[str, Any]] = []
        self.pending: dict[int, float] = {}
        self.changed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def join(self, code: str) -> None:
        async with self.http.post(
            f"{self.base}/api/room/join", json={"code": code, "nickname": self.nickname}
        ) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"{self.nickname} could not join: {r.status} {body}")
            self.me = body
        self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, asyncio.CancelledError):
            async with self.http.get(
                f"{self.base}/api/room/stream", timeout=aiohttp.ClientTimeout(total=None)
            ) as r:
                async for me in sse(r):
                    now = time.monotonic()
                    for k in [k for k in self.pending if k <= me["version"]]:
                        self.stats.to_phone.append(now - self.pending.pop(k))
                    self.me = me
                    self.changed.set()

    async def wait_for(self, check: Any, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until ``check(me)`` holds; the state then."""
        deadline = time.monotonic() + timeout
        while not check(self.me):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.nickname}: still {self.me}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return self.me

    async def tap(self, what: str, target: str = "") -> dict[str, Any] | None:
        """One tap; its answer, or None when refused (429 counted)."""
        t0 = time.monotonic()
        async with self.http.post(
            f"{self.base}/api/room/tap", json={"as": self.me["id"], "what": what, "target": target}
        ) as r:
            body = await r.json()
        if r.status == 429:
            self.stats.too_fast += 1
            return None
        if r.status != 200:
            self.stats.failed += 1
            return None
        self.stats.taps += 1
        self.pending[body["sent"]] = t0
        if body["outcome"] == "DENIED":
            self.stats.denied += 1
        return dict(body)

    async def wander(self) -> dict[str, Any] | None:
        """One everyday choice, drawn at random from the menu."""
        if not self.menu or self.rng.random() < 0.05:
            async with self.http.get(f"{self.base}/api/room/menu") as r:
                self.menu = await r.json()
        what = self.rng.choices([w for w, _ in WANDER], [n for _, n in WANDER])[0]
        item = next(m for m in self.menu if m["what"] == what)
        targets = item["targets"]
        if what == "walk" and not targets:
            return None
        target = self.rng.choice(targets)["id"] if targets else ""
        if what == "book" and target == "BANNED":
            target = "NEUTRAL"  # wandering phones read what they are allowed to
        return await self.tap(what, target)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.http.close()


async def run_phones(
    base: str, code: str, count: int, every: float, stop: asyncio.Event, stats: PhoneStats
) -> list[SimulatedPhone]:
    """``count`` phones that join and wander, a tap each ``every`` seconds, until ``stop``."""
    phones = [SimulatedPhone(base, f"Phone {i + 1}", stats, seed=i) for i in range(count)]
    for p in phones:
        await p.join(code)

    async def live(p: SimulatedPhone, offset: float) -> None:
        await asyncio.sleep(offset)
        while not stop.is_set():
            with contextlib.suppress(aiohttp.ClientError):
                await p.wander()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    try:
        await asyncio.gather(*(live(p, every * i / count) for i, p in enumerate(phones)))
    finally:
        for p in phones:
            await p.close()
    return phones
