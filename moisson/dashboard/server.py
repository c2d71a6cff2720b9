"""The dashboard: what the harvester sees, live, in a browser. Read-only.

It reads PostgreSQL (profiles, ledger, blacklist, the name registry: ``PostgresReader``)
and tails the sensor topics without a consumer group (so it commits nothing and
changes nothing).
The page is one self-contained HTML file: no CDN, no web fonts, and every string from
an event is set as text, never as HTML.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter, deque
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from moisson.metrics import DashboardMetrics
from moisson.registry import id_resolver
from moisson.settings import Settings
from processors.fold import Event
from processors.privacy import Privacy
from processors.scoring import Rulebook, RulesError, load_rules
from schemas import dead_letters
from schemas.codec import CodecError, IdResolver, decode
from schemas.kinds import SENSOR_KINDS
from sinks.postgres.reader import PostgresReader
from sinks.postgres.tables import create_tables, engine_for

log = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "hex") and hasattr(value, "int"):  # uuid.UUID
        return str(value)
    return value


class Harvest:
    """Tails the sensor topics (rates, latest events) and the dead letters (counts per reason)."""

    def __init__(
        self,
        settings: Settings,
        feed_size: int = 60,
        resolver: IdResolver | None = None,
        max_events: int = 2_000_000,
    ) -> None:
        self.settings = settings
        self.resolver = resolver  # registry mode: sensor messages may name a schema id
        self.totals: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.recent: deque[tuple[float, str]] = deque(maxlen=50_000)
        self.feed: deque[dict[str, Any]] = deque(maxlen=feed_size)
        self.first_event_at: float | None = None
        #: Every decoded sensor event of the run, for the What if page (capped).
        self.events: list[Event] = []
        self.max_events = max_events
        #: The earliest event time seen: the simulation's day 1 (Beijing time) on the page.
        self.sim_start: datetime | None = None
        #: Refusals the sensors reported (a gate DENIED, a ticket office REFUSED), by kind.
        self.refused: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harvest-tail", daemon=True)
        self.kind_of = settings.topics.kind_of

    def start(self) -> Harvest:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        while not self._stop.is_set():
            try:
                consumer = KafkaConsumer(
                    **self.settings.kafka.client_kwargs(),
                    enable_auto_commit=False,
                    group_id=None,
                )
                parts = [
                    TopicPartition(t, p)
                    for t in [*self.kind_of, self.settings.topics.dlq]
                    for p in sorted(consumer.partitions_for_topic(t) or ())
                ]
                if not parts:
                    consumer.close()
                    time.sleep(1)
                    continue
                consumer.assign(parts)
                consumer.seek_to_beginning()
                while not self._stop.is_set():
                    for records in consumer.poll(timeout_ms=300).values():
                        for r in records:
                            if r.topic == self.settings.topics.dlq:
                                self._dead_letter(r.headers or [])
                            else:
                                self._take(r.topic, r.value)
                consumer.close()
            except Exception as exc:  # the broker may not be up yet
                log.warning("dashboard cannot tail the sensor topics yet: %s", exc)
                time.sleep(1)

    def _take(self, topic: str, value: bytes) -> None:
        kind = self.kind_of.get(topic, topic)
        now = time.monotonic()
        self.totals[kind] += 1
        self.recent.append((now, kind))
        if self.first_event_at is None:
            self.first_event_at = time.time()
        try:
            _, record = decode(value, resolver=self.resolver)
        except CodecError as exc:
            self.feed.append({"kind": kind, "error": exc.reason.value})
            return
        if len(self.events) < self.max_events:
            self.events.append(Event(kind, record))
        at = record.get("occurred_at")
        if isinstance(at, datetime) and (self.sim_start is None or at < self.sim_start):
            self.sim_start = at
        if record.get("outcome") in ("DENIED", "REFUSED"):
            self.refused[kind] += 1
        self.feed.append({"kind": kind, **_jsonable(record)})

    def _dead_letter(self, headers: list[tuple[str, bytes | None]]) -> None:
        reason = dead_letters.read(headers).get(dead_letters.REASON) or "unknown"
        self.dead_letters[reason] += 1

    def rates(self, window: float = 5.0) -> dict[str, float]:
        cutoff = time.monotonic() - window
        counts = Counter(k for t, k in list(self.recent) if t >= cutoff)
        return {k: round(counts.get(k, 0) / window, 1) for k in SENSOR_KINDS}


class Dashboard:
    def __init__(
        self,
        settings: Settings,
        rules: Rulebook | None = None,
        spotlight: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules or load_rules(settings.processor.rules_path)
        url, schema = settings.database.sqlalchemy_url(), settings.database.schema_name
        engine = engine_for(url, schema)
        create_tables(engine, schema, self.rules)  # before the sink, maybe: empty tables
        engine.dispose()
        self.pg = PostgresReader(url, schema)
        self.harvest = Harvest(settings, resolver=id_resolver(settings))
        self.spotlight = spotlight or {}
        self.started_at = time.time()
        self.metrics = DashboardMetrics()

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
                k: self.harvest.totals.get(k, 0) for k in SENSOR_KINDS if k not in harvested
            },
        }

    def overview(self) -> dict[str, Any]:
        count, bins = self.pg.score_histogram(25)
        listed = self.pg.blacklisted_now()
        names = self.pg.names([r["citizen_id"] for r in listed] + list(self.spotlight.values()))
        named = self.pg.named_profiles()
        return {
            "rates": self.harvest.rates(),
            "totals": dict(self.harvest.totals),
            "refused": {k: self.harvest.refused.get(k, 0) for k in ("metro", "payment")},
            "dead_letters": dict(sorted(self.harvest.dead_letters.items())),
            "citizens": count,
            "threshold": self.rules.blacklist_threshold,
            "scale": self.scale(),
            "sim_start": _jsonable(self.harvest.sim_start),
            "histogram": [{"from": b, "count": n} for b, n in bins.items()],
            "blacklist": [
                {
                    "id": r["citizen_id"],
                    "name": names.get(r["citizen_id"], ""),
                    "score": r["score"],
                    "since": _jsonable(r["since"]),
                }
                for r in listed
            ],
            "feed": list(self.harvest.feed)[-25:],
            "spotlight": [
                {"key": k, "id": v, "name": names.get(v, k)} for k, v in self.spotlight.items()
            ],
            "first_event_at": self.harvest.first_event_at,
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
        return _jsonable(
            {
                "profile": profile,
                "name": self.pg.names([cid]).get(cid, ""),
                "ledger": ledger,
                "blacklist": periods,
                "series": series,
                "sanctions": [p for p in periods if p["lifted_at"] is None],
                "scale": self.scale(),
                "sim_start": self.harvest.sim_start,
                "privacy": self.privacy(),
            }
        )

    def search(self, q: str) -> list[dict[str, Any]]:
        return self.pg.search(q, limit=20)

    # -- web ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
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
        self.harvest.start()

    async def _cleanup(self, _: web.Application) -> None:
        self.harvest.stop()
        self.pg.close()

    async def index(self, _: web.Request) -> web.Response:
        return self._page("index.html")

    async def whatif_page(self, _: web.Request) -> web.Response:
        return self._page("whatif.html")

    async def asset(self, request: web.Request) -> web.Response:
        """What the pages share (``/base.css``, ``/base.js``), from the package."""
        name = request.path.lstrip("/")
        text = resources.files("moisson.dashboard").joinpath(name).read_text("utf-8")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return web.Response(text=text, content_type=kind)

    def _page(self, name: str) -> web.Response:
        html = resources.files("moisson.dashboard").joinpath(name).read_text("utf-8")
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; "
                "style-src 'unsafe-inline' 'self'; img-src 'self' data:",
            },
        )

    async def api_overview(self, _: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.overview))

    async def api_citizen(self, request: web.Request) -> web.Response:
        data = await asyncio.to_thread(self.citizen, request.match_info["cid"])
        if data is None:
            raise web.HTTPNotFound(text="no such citizen")
        return web.json_response(data)

    def whatif(self, sets: list[str]) -> dict[str, Any]:
        """This run's events re-scored under the live rules and under ``sets``."""
        from moisson.dashboard.whatif import what_if

        p = self.settings.processor
        key = p.pseudonymise_key.get_secret_value() if p.pseudonymise_key else None
        privacy = Privacy.of(p.harvest_kinds, key)
        events = list(self.harvest.events)
        return _jsonable(what_if(events, self.rules, sets, privacy, self.pg.names))

    async def api_whatif(self, request: web.Request) -> web.Response:
        try:
            data = await asyncio.to_thread(self.whatif, request.query.getall("set", []))
        except RulesError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(data)

    async def api_search(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "").strip()
        return web.json_response(await asyncio.to_thread(self.search, q) if q else [])

    async def api_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: an overview every second."""
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        self.metrics.stream_clients.inc()
        try:
            while True:
                data = await asyncio.to_thread(self.overview)
                await resp.write(f"event: overview\ndata: {json.dumps(data)}\n\n".encode())
                await asyncio.sleep(1.0)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.metrics.stream_clients.dec()
        return resp


def serve(
    settings: Settings, host: str, port: int, spotlight: dict[str, str] | None = None
) -> None:
    """Run the dashboard until interrupted."""
    web.run_app(
        Dashboard(settings, spotlight=spotlight).app(),
        host=host,
        port=port,
        print=None,
        handle_signals=True,
    )
