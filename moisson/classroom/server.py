"""The room's web side, on top of the dashboard: the phones' pages and API, the
projector, and the instructor's buttons.

Who may do what is :mod:`moisson.classroom.access`'s; a phone acts through its
capability cookie (:meth:`Room.holder`), at most ``taps_per_second`` taps a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from moisson.classroom.access import phones_only, refusal
from moisson.classroom.choices import Choice, ChoiceError, menu, observe
from moisson.classroom.clock import SessionClock
from moisson.classroom.erasure import Erasure
from moisson.classroom.live import RoomTail
from moisson.classroom.room import Refused, Room, Student
from moisson.classroom.views import projector_view, student_view, tap_detail
from moisson.dashboard.server import Dashboard
from moisson.dashboard.tail import jsonable
from producers.city import SensorEvent
from producers.publisher import KafkaSanctions

log = logging.getLogger(__name__)

COOKIE = "moisson_room"
#: Live streams one student may hold open at once (tabs of the phone page).
STREAMS_PER_PHONE = 3
#: The projector's stream sends the room at most this often.
PROJECTOR_EVERY_S = 0.1
#: Seconds a self-erasure waits for the pipeline to apply the student's last taps.
SETTLE_S = 10.0


class Classroom:
    """The room's routes over a dashboard, a room, its clock and the sensors' sanctions."""

    def __init__(
        self,
        dashboard: Dashboard,
        room: Room,
        clock: SessionClock,
        publish: Callable[[SensorEvent], None],
        sanctions: KafkaSanctions,
        join_url: str,
        erase_room: Callable[[], Erasure],
        erase_student: Callable[[str], Erasure],
        register: Callable[[list[Any]], None],
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.dashboard, self.room, self.clock = dashboard, room, clock
        self.rules = dashboard.rules
        self.publish, self.sanctions, self.join_url = publish, sanctions, join_url
        self._erase_room, self._erase_student = erase_room, erase_student
        self.register, self.on_end = register, on_end
        self.feed: deque[dict[str, Any]] = deque(maxlen=60)
        self.erased: Erasure | None = None
        self.tail = RoomTail(dashboard.settings, lambda cid: cid in room.students, self._changed)
        #: One event per open stream: a phone's (by citizen) and each projector's.
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._projectors: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        sanctions.on_change = self._changed  # a student entering or leaving the blacklist

    # -- change notification ------------------------------------------------------------

    def _changed(self, cid: str) -> None:
        """From a reading thread: wake the phone of ``cid`` and the projectors."""
        if self._loop is not None and cid in self.room.students:
            self._loop.call_soon_threadsafe(self._wake, cid)

    def _wake(self, cid: str | None = None) -> None:
        """Wake the streams of ``cid``'s phone (if any) and of every projector."""
        for ev in (*self._watchers.get(cid or "", ()), *self._projectors):
            ev.set()

    # -- the app ------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = self.dashboard.app()
        app.middlewares.insert(0, phones_only)
        r = app.router
        for path, page in (("/join", "phone.html"), ("/phone", "phone.html")):
            r.add_get(path, self._page(page))
        r.add_get("/projector", self._page("projector.html"))
        r.add_post("/api/room/join", self.api_join)
        r.add_get("/api/room/me", self.api_me)
        r.add_get("/api/room/menu", self.api_menu)
        r.add_get("/api/room/stream", self.api_stream)
        r.add_post("/api/room/tap", self.api_tap)
        r.add_post("/api/room/erase-me", self.api_erase_me)
        r.add_get("/api/room/file", self.api_file)
        r.add_get("/api/room/projector", self.api_projector)
        r.add_get("/api/room/projector/stream", self.api_projector_stream)
        r.add_get("/api/room/qr.svg", self.api_qr)
        r.add_post("/api/room/next-day", self.api_next_day)
        r.add_post("/api/room/end", self.api_end)
        r.add_post("/api/room/erase", self.api_erase_room)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self.tail.start()

    async def _cleanup(self, _: web.Application) -> None:
        await asyncio.to_thread(self.tail.stop)

    def _page(self, name: str) -> Callable[[web.Request], Any]:
        async def page(_: web.Request) -> web.Response:
            return self.dashboard.page(name, "moisson.classroom")

        return page

    # -- phones -------------------------------------------------------------------------

    def _student(self, request: web.Request, acting_for: str | None = None) -> Student:
        return self.room.holder(request.cookies.get(COOKIE), acting_for)

    def me(self, student: Student) -> dict[str, Any]:
        return student_view(
            student,
            self.tail.doubles.get(student.id),
            self.tail.ledger.get(student.id, ()),
            self.sanctions.is_blacklisted(student.id),
            self.rules,
            self.clock,
            self.room.ended,
        )

    async def api_join(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            code, nickname = str(body.get("code", "")), str(body.get("nickname", ""))
        except (ValueError, AttributeError):
            return web.json_response({"error": "send JSON with code and nickname"}, status=400)
        try:
            student = self.room.join(code, nickname[:1000], self.clock.now_ms())
        except Refused as exc:
            return refusal(exc)
        await asyncio.to_thread(self.register, [student.citizen])
        self._wake()
        resp = web.json_response(self.me(student))
        resp.set_cookie(
            COOKIE, self.room.capability(student), httponly=True, samesite="Strict", path="/"
        )
        return resp

    async def api_me(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.me(self._student(request)))
        except Refused as exc:
            return refusal(exc)

    async def api_menu(self, request: web.Request) -> web.Response:
        try:
            student = self._student(request)
        except Refused as exc:
            return refusal(exc)
        return web.json_response(menu(self.room.classmates(student.id)))

    async def api_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the phone's state whenever it changes."""
        try:
            student = self._student(request)
        except Refused as exc:
            return refusal(exc)
        watching = self._watchers.setdefault(student.id, set())
        if len(watching) >= STREAMS_PER_PHONE:
            return refusal(
                Refused(429, "this phone already has its pages open", "close the other tabs")
            )
        wake = asyncio.Event()
        watching.add(wake)
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await resp.prepare(request)
            while student.id in self.room.students:
                body = json.dumps(self.me(student))
                await resp.write(f"event: me\ndata: {body}\n\n".encode())
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 15)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.get(student.id, set()).discard(wake)
        return resp

    async def api_tap(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            acting_for, choice = (
                str(body["as"]),
                Choice(str(body["what"]), str(body.get("target", ""))),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response({"error": "send JSON with as, what and target"}, status=400)
        try:
            student = self._student(request, acting_for)
            self.room.take_tap(student)
            if choice.what == "walk" and choice.target not in self.room.students:
                raise Refused(400, "no such classmate in the room", "pick one from the list")
            event = observe(choice, student.citizen, self.clock.stamp(), self.sanctions)
        except Refused as exc:
            return refusal(exc)
        except ChoiceError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.publish(event)
        student.sent += 1
        outcome = event.record.get("outcome", "SEEN")
        companion = self.room.students.get(choice.target)
        self.feed.append(
            {
                "at": self.clock.label(event.occurred_ms),
                "who": student.nickname,
                "kind": event.kind,
                "what": choice.what,
                "detail": tap_detail(event, companion.nickname if companion else ""),
                "outcome": outcome,
            }
        )
        self._wake()
        return web.json_response(
            {
                "kind": event.kind,
                "outcome": outcome,
                "sent": student.sent,
                "at": self.feed[-1]["at"],
            }
        )

    async def api_erase_me(self, request: web.Request) -> web.Response:
        """Erase this student: the pass stops working now; once the pipeline has applied
        their last taps (up to ``SETTLE_S``), their rows are deleted and counted again."""
        try:
            student = self._student(request)
        except Refused as exc:
            return refusal(exc)
        self.room.erase(student)
        await asyncio.to_thread(self._settled, student)
        self.tail.forget(student.id)
        self.feed = deque((f for f in self.feed if f["who"] != student.nickname), maxlen=60)
        report = await asyncio.to_thread(self._erase_student, student.id)
        self._wake()
        resp = web.json_response(jsonable(report.json()))
        resp.del_cookie(COOKIE, path="/")
        return resp

    def _settled(self, student: Student) -> None:
        """Wait (up to ``SETTLE_S``) until PostgreSQL holds every tap of ``student``, so
        the sink writes nothing about them after their rows are deleted."""
        deadline = time.monotonic() + SETTLE_S
        while student.sent and time.monotonic() < deadline:
            row = self.dashboard.pg.profiles([student.id]).get(student.id)
            if row is not None and row["version"] >= student.sent:
                return
            time.sleep(0.1)

    async def api_file(self, request: web.Request) -> web.Response:
        """The debrief: what the harvester holds about this student (from PostgreSQL)."""
        try:
            student = self._student(request)
        except Refused as exc:
            return refusal(exc)
        data = await asyncio.to_thread(self.dashboard.citizen, student.id)
        if data is not None:  # times on the session's clock, as the phone showed them
            for e in data["ledger"]:
                e["at"] = self._label(e["occurred_at"])
            for b in data["blacklist"]:
                b["entered"], b["lifted"] = (
                    self._label(b["entered_at"]),
                    self._label(b["lifted_at"]),
                )
        return web.json_response({"nickname": student.nickname, "file": data})

    def _label(self, iso: str | None) -> str | None:
        if iso is None:
            return None
        return self.clock.label(int(datetime.fromisoformat(iso).timestamp() * 1000))

    # -- the projector and the instructor ----------------------------------------------

    def projector(self) -> dict[str, Any]:
        data = projector_view(
            self.room,
            self.tail.doubles,
            self.tail.ledger,
            {cid for cid in self.room.students if self.sanctions.is_blacklisted(cid)},
            self.rules,
            self.clock,
            self.feed,
        )
        data["join_url"] = self.join_url
        data["erased"] = jsonable(self.erased.json()) if self.erased else None
        return data

    async def api_projector(self, _: web.Request) -> web.Response:
        return web.json_response(self.projector())

    async def api_projector_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the room, each time it changes (at most every
        ``PROJECTOR_EVERY_S`` seconds)."""
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        wake = asyncio.Event()
        self._projectors.add(wake)
        try:
            await resp.prepare(request)
            while True:
                pushed = time.monotonic()
                body = json.dumps(self.projector())
                await resp.write(f"event: room\ndata: {body}\n\n".encode())
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 5)
                await asyncio.sleep(max(0.0, PROJECTOR_EVERY_S - (time.monotonic() - pushed)))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._projectors.discard(wake)
        return resp

    async def api_qr(self, _: web.Request) -> web.Response:
        import io

        import segno

        buf = io.BytesIO()
        segno.make(self.join_url, error="m").save(buf, kind="svg", scale=8, border=2)
        return web.Response(body=buf.getvalue(), content_type="image/svg+xml")

    async def api_next_day(self, _: web.Request) -> web.Response:
        day = self.clock.next_day()
        self._wake()
        return web.json_response({"day": day + 1, "clock": self.clock.label()})

    async def api_end(self, _: web.Request) -> web.Response:
        """End the session: taps stop, the crowd stops, and each phone turns to its file."""
        self.room.ended = True
        await asyncio.to_thread(self.on_end)
        for cid in list(self.room.students):
            self._wake(cid)
        return web.json_response({"ended": True})

    async def api_erase_room(self, _: web.Request) -> web.Response:
        self.room.ended = True
        await asyncio.to_thread(self.tail.stop)
        self.erased = await asyncio.to_thread(self._erase_room)
        self.room.students.clear()
        self.feed.clear()
        self._wake()
        return web.json_response(jsonable(self.erased.json()))
