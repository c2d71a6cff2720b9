"""The crowd: the simulated city lives on the session's clock beside the students, so
the class histogram has a city around it and the sanctions a population to act on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from moisson.classroom.clock import SessionClock
from producers.city import City, SanctionSource, SensorEvent

log = logging.getLogger(__name__)


class Crowd:
    """Publishes ``city``'s events when the session clock reaches them, in a thread
    (a jump to the next morning publishes the rest of the day at once)."""

    def __init__(
        self,
        city: City,
        clock: SessionClock,
        send: Callable[[SensorEvent], None],
        sanctions: SanctionSource,
    ) -> None:
        self.city, self.clock, self.send, self.sanctions = city, clock, send, sanctions
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crowd", daemon=True)

    def start(self) -> Crowd:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            for event in self.city.events(None, self.sanctions):
                while (ahead := event.occurred_ms - self.clock.now_ms()) > 0:
                    if self._stop.wait(min(0.2, ahead / 1000 / self.clock.speed)):
                        return
                if self._stop.is_set():
                    return
                self.send(event)
                self.sent += 1
        except Exception as exc:  # reported by the session, which stops
            log.exception("the crowd stopped")
            self.error = exc
