"""Fetch and build, ahead of `make compose-test`, what needs no Docker engine.

CI runs it in the background, niced, while `make test` runs (`.ci/run`): Compose v2 built
from its Go module (about 2 minutes of CPU) and debootstrap's Debian base. Both land in
the cache, where the compose test finds them.

    python -m tests.compose.prepare
"""

from __future__ import annotations

import sys
import time

from moisson.settings import Settings
from tests.compose.engine import EngineError, compose_plugin
from tests.compose.images import debian_tar


def main() -> int:
    cache = Settings().stack.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    for what, step in (("Compose v2", compose_plugin), ("the Debian base", debian_tar)):
        started = time.monotonic()
        try:
            done = step(cache)
        except EngineError as exc:
            print(f"compose-prep: {what} failed: {exc}", file=sys.stderr)
            return 1
        print(f"compose-prep: {what} in {time.monotonic() - started:.0f}s: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
