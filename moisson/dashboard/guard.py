"""Who the dashboard answers: a Host allowlist against DNS rebinding, and no API call
made on behalf of another site.

A page on another site can point a name it controls at 127.0.0.1 and then read the
dashboard as its own origin (DNS rebinding); its requests still carry that name in
``Host``, so any Host not on the list gets 421. A page on another site can also make a
browser send requests here without reading the answers (an ``<img>``, a ``fetch`` in
no-cors mode): the API routes refuse a foreign ``Origin`` or a ``Sec-Fetch-Site`` other
than same-origin, so such a page cannot even start a What if.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

#: The names the dashboard always answers to.
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
#: The routes only the dashboard's own pages may call.
GUARDED = ("/api/", "/metrics")


def hostname(host: str) -> str | None:
    """The name in a ``Host`` header or a configured host, lowercase, without its port
    (IPv6 in brackets); None if it is not one."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
    elif host.count(":") > 1:  # a bare IPv6 address, as --host takes it
        return f"[{host}]"
    else:
        name, _, port = host.partition(":")
        rest = f":{port}" if _ else ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    name = name.rstrip(".")
    return name or None


def allowed(host: str, extra: str | Iterable[str] = ()) -> frozenset[str]:
    """The allowlist: loopback, the address the dashboard listens on, and ``extra``
    (names, or one comma-separated string)."""
    names = extra.split(",") if isinstance(extra, str) else list(extra)
    found = (hostname(n) for n in (*LOOPBACK, host, *names) if n.strip())
    return frozenset(n for n in found if n)


def guard(names: frozenset[str]) -> Middleware:
    """The middleware: 421 for a Host not in ``names``, 403 for a cross-site API call."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if hostname(host) not in names:
            return web.Response(
                status=421,
                text=f"error: this dashboard does not answer to the host {host[:100]!r}\n"
                f"fix: open it at one of {', '.join(sorted(names))}, or add the name "
                "with --allowed-hosts (DASHBOARD_ALLOWED_HOSTS)\n",
            )
        if request.path.startswith(GUARDED) and not same_origin(request, host):
            return web.Response(
                status=403,
                text="error: the dashboard's API answers only its own pages\n"
                "fix: open the dashboard's page itself rather than calling it from another site\n",
            )
        return await handler(request)

    return check


def same_origin(request: web.Request, host: str) -> bool:
    """Whether a browser said this request comes from the dashboard's own pages (or
    from no page: a typed address, curl, Prometheus)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    host = host.lower()
    return origin is None or origin.lower() in (f"http://{host}", f"https://{host}")
