"""Who may do what in the room, whatever reaches it.

- Every request first passes the dashboard's guard: a Host not on the allowlist gets
  421, an API call from another site 403.
- A request that reaches the room's network address (not loopback) may only use the
  phone's routes (:data:`PHONE_ROUTES`): the projector, the dashboard and the
  instructor's buttons answer on loopback only, so a phone cannot end, advance or
  erase the room, nor read a classmate's file.
- A phone acts through its capability, for its own citizen only (``Room.holder``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from moisson.classroom.room import Refused

#: What a phone may reach from the room's network address.
PHONE_ROUTES = frozenset(
    {
        "/join",
        "/phone",
        "/base.css",
        "/base.js",
        "/api/room/join",
        "/api/room/me",
        "/api/room/stream",
        "/api/room/menu",
        "/api/room/tap",
        "/api/room/erase-me",
        "/api/room/file",
    }
)


def on_loopback(request: web.Request) -> bool:
    """Whether the request came in on a loopback socket (the instructor's machine)."""
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    try:
        return sock is not None and ipaddress.ip_address(sock[0]).is_loopback
    except ValueError:
        return False


def refusal(exc: Refused) -> web.Response:
    return web.json_response(
        {"error": str(exc), "fix": exc.fix},
        status=exc.status,
        headers={"Retry-After": "1"} if exc.status == 429 else None,
    )


@web.middleware
async def phones_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """403 for any route but the phone's that arrives on the room's network address."""
    if request.path not in PHONE_ROUTES and not on_loopback(request):
        return web.Response(
            status=403,
            text="error: this page is the instructor's\n"
            "fix: on a phone, open the join link shown on the projector\n",
        )
    return await handler(request)
