"""The dashboard: what the harvester sees, live, in a browser. Read-only.

It reads PostgreSQL (profiles, ledger, blacklist, the name registry: ``PostgresReader``)
and tails the sensor topics without a consumer group (``moisson.dashboard.tail``).
The page is one self-contained HTML file: no CDN, no web fonts, and every string from
an event is set as text, never as HTML.

Whoever asks, the work is bounded: it answers only the hosts it is named by and only its
own pages on the API (``guard``); the overview is computed at most once a second for
all browsers, a What if one at a time and cached (``shared``); the live stream takes at
most ``DASHBOARD_MAX_STREAM_CLIENTS`` browsers; the events kept for the What if take at
most ``DASHBOARD_EVENTS_MAX_BYTES``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from moisson.dashboard.guard import allowed, guard
from moisson.dashboard.shared import Busy, Each, Fresh, OneAtATime
from moisson.dashboard.tail import LiveTail, jsonable
from moisson.metrics import DashboardMetrics
from moisson.resolvers import id_resolver
from moisson.settings import Settings
from processors.core.privacy import Privacy
from processors.core.scoring import Rulebook, RulesError, load_rules
from processors.core.whatif import parse_sets
from schemas.kinds import SENSOR_KINDS
from sinks.postgres.reader import PostgresReader
from sinks.postgres.tables import create_tables, engine_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """One overview, encoded once for every browser that reads it."""

    json: bytes
    event: bytes  # as a server-sent event

    @classmethod
    def of(cls, data: dict[str, Any]) -> Snapshot:
        body = json.dumps(data).encode()
        return cls(body, b"event: overview\ndata: " + body + b"\n\n")


class Dashboard:
    """The routes, over a reader of the sink's tables and a tail of the topics."""

    def __init__(
        self,
        settings: Settings,
        pg: PostgresReader,
        live: LiveTail,
        rules: Rulebook | None = None,
        spotlight: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.settings = settings
        self.rules = rules or load_rules(settings.processor.rules_path)
        self.pg, self.live = pg, live
        self.spotlight = spotlight or {}
        #: The Host names it answers to: loopback, ``host`` and DASHBOARD_ALLOWED_HOSTS.
        self.hosts = allowed(host, settings.dashboard.allowed_hosts)
        self.started_at = time.time()
        self.metrics = DashboardMetrics()
        self.streams = 0  # browsers on /api/stream now
        self.shared_overview = Fresh(lambda: Snapshot.of(self.overview()))
        self.citizens = Each(self._citizen_json)
        self.whatifs: OneAtATime[bytes] = OneAtATime()

    @classmethod
    def open(
        cls, settings: Settings, host: str = "127.0.0.1", spotlight: dict[str, str] | None = None
    ) -> Dashboard:
        """A dashboard on the configured database (its tables created if missing: the
        sink may start after it) and topics."""
        rules = load_rules(settings.processor.rules_path)
        url, schema = settings.database.sqlalchemy_url(), settings.database.schema_name
        engine = engine_for(url, schema)
        create_tables(engine, schema, rules)
        engine.dispose()
        live = LiveTail(settings, resolver=id_resolver(settings))
        return cls(settings, PostgresReader(url, schema), live, rules, spotlight, host)

    # -- queries (synchronous; run in a thread) --------------------------------------

    def scale(self) -> dict[str, int]:
        """The rules' scale, for the page's axes: its ends and the two lines on it."""
        r = self.rules
        return {
            "min": r.score_min,
            "max": r.score_max,
            "threshold": r.blacklist_threshold,
            "recovery": r.recovery_threshold,
        }

    def privacy(self) -> dict[str, Any]:
        """The ethics toggles in force, and the events the harvester left unread."""
        chosen = Privacy.of(self.settings.processor.harvest_kinds, None)
        harvested = [k for k in SENSOR_KINDS if chosen.harvests(k)]
        return {
            "harvested": harvested,
            "pseudonymised": self.settings.processor.pseudonymise_key is not None,
            "not_harvested": {
                k: self.live.totals.get(k, 0) for k in SENSOR_KINDS if k not in harvested
            },
        }

    def overview(self) -> dict[str, Any]:
        count, bins = self.pg.score_histogram(25)
        listed = self.pg.blacklisted_now()
        names = self.pg.names([r["citizen_id"] for r in listed] + list(self.spotlight.values()))
        named = self.pg.named_profiles()
        return {
            "rates": self.live.rates(),
            "totals": dict(self.live.totals),
            "refused": {k: self.live.refused.get(k, 0) for k in ("metro", "payment")},
            "dead_letters": dict(sorted(self.live.dead_letters.items())),
            "citizens": count,
            "threshold": self.rules.blacklist_threshold,
            "scale": self.scale(),
            "sim_start": jsonable(self.live.sim_start),
            "histogram": [{"from": b, "count": n} for b, n in bins.items()],
            "blacklist": [
                {
                    "id": r["citizen_id"],
                    "name": names.get(r["citizen_id"], ""),
                    "score": r["score"],
                    "since": jsonable(r["since"]),
                }
                for r in listed
            ],
            "feed": list(self.live.feed)[-25:],
            "spotlight": [
                {"key": k, "id": v, "name": names.get(v, k)} for k, v in self.spotlight.items()
            ],
            "first_event_at": self.live.first_event_at,
            "privacy": {**self.privacy(), "named": named},
        }

    def citizen(self, cid: str) -> dict[str, Any] | None:
        profile = self.pg.profiles([cid]).get(cid)
        if profile is None:
            return None
        ledger = self.pg.ledger(cid)
        periods = self.pg.blacklist_rows(cid)
        series = [{"at": profile["first_seen"], "score": profile["base_score"]}]
        series += [{"at": e["occurred_at"], "score": e["score_after"]} for e in ledger]
        for e in ledger:
            rule = self.rules.rule(e["rule_id"])
            e["mirrors"] = rule.mirrors
            e["source"] = rule.source
        return jsonable(
            {
                "profile": profile,
                "name": self.pg.names([cid]).get(cid, ""),
                "ledger": ledger,
                "blacklist": periods,
                "series": series,
                "sanctions": [p for p in periods if p["lifted_at"] is None],
                "scale": self.scale(),
                "sim_start": self.live.sim_start,
                "privacy": self.privacy(),
            }
        )

    def _citizen_json(self, cid: str) -> bytes | None:
        data = self.citizen(cid)
        return None if data is None else json.dumps(data).encode()

    def search(self, q: str) -> list[dict[str, Any]]:
        return self.pg.search(q, limit=20)

    # -- web ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[guard(self.hosts), self._count])
        app.router.add_get("/", self.index)
        app.router.add_get("/metrics", self.api_metrics)
        app.router.add_get("/api/overview", self.api_overview)
        app.router.add_get("/api/citizen/{cid}", self.api_citizen)
        app.router.add_get("/api/search", self.api_search)
        app.router.add_get("/api/stream", self.api_stream)
        app.router.add_get("/whatif", self.whatif_page)
        app.router.add_get("/base.css", self.asset)
        app.router.add_get("/base.js", self.asset)
        app.router.add_get("/api/whatif", self.api_whatif)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Count each request by its route's pattern (never by the citizen it names)."""
        route = request.match_info.route.resource
        self.metrics.requests.labels(route.canonical if route is not None else "unknown").inc()
        return await handler(request)

    async def api_metrics(self, _: web.Request) -> web.Response:
        """The dashboard's own Prometheus metrics, on its own port."""
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _startup(self, _: web.Application) -> None:
        self.live.start()

    async def _cleanup(self, _: web.Application) -> None:
        self.live.stop()
        self.whatifs.close()
        self.pg.close()

    async def index(self, _: web.Request) -> web.Response:
        return self.page("index.html")

    async def whatif_page(self, _: web.Request) -> web.Response:
        return self.page("whatif.html")

    async def asset(self, request: web.Request) -> web.Response:
        """What the pages share (``/base.css``, ``/base.js``), from the package."""
        name = request.path.lstrip("/")
        text = resources.files("moisson.dashboard").joinpath(name).read_text("utf-8")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return web.Response(text=text, content_type=kind)

    def page(self, name: str, package: str = "moisson.dashboard") -> web.Response:
        """A page of ``package``, with the policy that keeps its scripts its own."""
        html = resources.files(package).joinpath(name).read_text("utf-8")
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; "
                "style-src 'unsafe-inline' 'self'; img-src 'self' data:",
            },
        )

    async def api_overview(self, _: web.Request) -> web.Response:
        """The shared snapshot: at most a second old, computed once for everyone."""
        snapshot = await self.shared_overview.get()
        return web.Response(body=snapshot.json, content_type="application/json")

    async def api_citizen(self, request: web.Request) -> web.Response:
        body = await self.citizens.get(request.match_info["cid"])
        if body is None:
            raise web.HTTPNotFound(text="no such citizen")
        return web.Response(body=body, content_type="application/json")

    def whatif(self, variant: Rulebook) -> bytes:
        """This run's events re-scored under the live rules and under ``variant``."""
        from moisson.dashboard.whatif import what_if

        p = self.settings.processor
        key = p.pseudonymise_key.get_secret_value() if p.pseudonymise_key else None
        privacy = Privacy.of(p.harvest_kinds, key)
        tail = self.live.tail
        _, events = tail.snapshot()
        data = what_if(events, self.rules, variant, privacy, self.pg.names)
        return json.dumps(jsonable({**data, "dropped": tail.dropped})).encode()

    async def api_whatif(self, request: web.Request) -> web.Response:
        """One What if at a time, on its own thread, cached per rules and events taken."""
        try:
            variant = self.rules.with_deltas(parse_sets(request.query.getall("set", [])))
        except RulesError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        deltas = tuple((r.id, r.delta) for r in (*variant.rules, *variant.correlations))
        try:
            body = await self.whatifs.get(
                (deltas, self.live.tail.taken), lambda: self.whatif(variant)
            )
        except Busy:
            raise web.HTTPServiceUnavailable(
                text="error: the dashboard is busy with other What if computations\n"
                "fix: try again in a few seconds\n",
                headers={"Retry-After": "5"},
            ) from None
        return web.Response(body=body, content_type="application/json")

    async def api_search(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "").strip()
        return web.json_response(await asyncio.to_thread(self.search, q) if q else [])

    async def api_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the shared overview every second, to at most
        DASHBOARD_MAX_STREAM_CLIENTS browsers at once."""
        cap = self.settings.dashboard.max_stream_clients
        if self.streams >= cap:
            raise web.HTTPServiceUnavailable(
                text=f"error: the live stream already has {cap} browsers\n"
                "fix: close other dashboard tabs, or raise --max-stream-clients "
                "(DASHBOARD_MAX_STREAM_CLIENTS)\n",
                headers={"Retry-After": "30"},
            )
        self.streams += 1
        self.metrics.stream_clients.inc()
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await resp.prepare(request)
            while True:
                await resp.write((await self.shared_overview.get()).event)
                await asyncio.sleep(1.0)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.streams -= 1
            self.metrics.stream_clients.dec()
        return resp


def serve(
    settings: Settings,
    host: str,
    port: int,
    spotlight: dict[str, str] | None = None,
    shutdown_timeout: float = 1.0,
    listening: Callable[[], None] | None = None,
) -> None:
    """Run the dashboard until interrupted (KeyboardInterrupt: the CLI turns SIGTERM and
    SIGHUP into one too); open live streams get ``shutdown_timeout`` seconds to end.
    ``listening`` is called once the port is bound, so nothing claims a URL that fails."""
    web.run_app(
        Dashboard.open(settings, host, spotlight).app(),
        host=host,
        port=port,
        print=(lambda _banner: listening()) if listening else None,
        handle_signals=False,
        shutdown_timeout=shutdown_timeout,
    )
