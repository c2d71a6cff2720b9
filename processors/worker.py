"""The worker's entry point, the one module ``faust -A`` names:
``faust -A processors.worker worker`` (``moisson process`` calls :func:`build`).

The only place the processor is built from the environment: :func:`build` turns
settings into a ready app; ``app`` is built from ``Settings()`` when faust first asks
for it, not at import.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import faust
from kafka.partitioner.default import murmur2

from moisson import stopping
from moisson.metrics import MetricsError, MetricsServer, ProcessorMetrics, serve
from moisson.resolvers import planner_resolver
from moisson.settings import Settings
from processors.core.horizon import Horizon
from processors.core.planning import Folding
from processors.core.privacy import Privacy
from processors.core.scoring import load_rules
from processors.core.validation import Limits
from processors.engine.agent import Deps, register
from processors.engine.app import ProcessorApp, create_app
from processors.engine.faust_patches import (
    bound_consumer_stop,
    bound_producer_stop,
    shutdown_on_signal,
)

log = logging.getLogger(__name__)

app: ProcessorApp  # built on first access, by __getattr__

PORT_ENV = "METRICS_PROCESSOR_PORT"


def folding_of(settings: Settings) -> Folding:
    """What the planner needs: the kinds, the rules, the ethics toggles, the limits."""
    p = settings.processor
    rules = load_rules(p.rules_path)
    secret = p.pseudonymise_key.get_secret_value() if p.pseudonymise_key else None
    return Folding(
        kinds=settings.topics.kind_of,
        rules=rules,
        privacy=Privacy.of(p.harvest_kinds, secret),
        limits=Limits(
            max_message_bytes=p.max_message_bytes,
            max_key_bytes=p.max_key_bytes,
            max_keys=p.max_keys,
            max_burst_events=p.max_burst_events,
            max_double_bytes=p.max_double_bytes,
        ),
        horizon=Horizon.of(rules, p.lateness_s),
        # registry mode: messages may name their schema by id (looked up off the loop)
        resolver=planner_resolver(settings),
        partitioner=kafka_partition if p.check_partition else None,
    )


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as kafka-python and the Java
    client use) gives a keyed record: where the sensors put a citizen's events."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def deps_of(settings: Settings, metrics: ProcessorMetrics | None = None) -> Deps:
    """The harvester's dependencies from ``settings`` (its figures go to ``metrics``)."""
    p = settings.processor
    return Deps(
        folding=folding_of(settings),
        topics=settings.topics.names,
        batch_size=p.batch_size,
        batch_within_s=p.batch_within_s,
        seek_every_s=p.seek_every_s,
        stall_s=p.stall_s,
        gap_seeks=p.gap_seeks,
        fault=p.fault,
        metrics=metrics if metrics is not None else ProcessorMetrics(),
    )


def build(settings: Settings) -> ProcessorApp:
    """The harvester's app from ``settings``, its agents registered, on a worker that
    stops cleanly on every stop signal (:class:`StoppingWorker`).

    Its metrics port is bound first and held for the process's life (unless
    ``METRICS_ENABLED=false``): a taken port raises :class:`MetricsError` here, before
    faust starts or joins the group, and two workers on one host cannot both pass.
    """
    metrics = ProcessorMetrics()
    conf = settings.metrics
    server = (
        serve(metrics.registry, conf.host, conf.processor_port, "processor", PORT_ENV)
        if conf.enabled
        else None
    )
    built = create_app(settings)
    built.conf.Worker = StoppingWorker  # type: ignore[assignment]  # faust types it a Symbol
    register(built, deps_of(settings, metrics))
    if server is not None:
        export_metrics(built, metrics, server, conf.faust_monitor)
    return built


class StoppingWorker(faust.Worker):
    """faust's worker, stopping cleanly on SIGTERM, SIGINT and SIGHUP within
    :data:`moisson.stopping.GRACE_S`, also when Kafka is gone.

    faust stops on SIGTERM and SIGINT but not SIGHUP (which killed it outright), and a
    worker whose broker is gone waited a minute for its consumer thread and up to 20
    minutes for its producer (see :meth:`bound_stop`). Here the first signal stops the
    worker as faust does and arms the deadline; a second signal, or the deadline, ends
    the process.
    """

    stop_request: stopping.Stop | None = None

    def install_signal_handlers(self) -> None:
        ignored = [sig for sig in stopping.STOP_SIGNALS if stopping.ignored(sig)]
        super().install_signal_handlers()  # SIGUSR1 (a stack dump) and SIGUSR2 stay
        self.stop_request = stopping.Stop()
        for sig in stopping.STOP_SIGNALS:
            if sig in ignored:  # as nohup asked
                self.loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
            else:
                self.loop.add_signal_handler(sig, self.on_stop_signal, sig)

    def on_stop_signal(self, signum: int) -> None:
        assert self.stop_request is not None
        first = not self.stop_request()
        self.stop_request.ask(signum)  # the second signal ends the process here
        if first:
            self.bound_stop()
            shutdown_on_signal(self, signum)

    def on_worker_shutdown(self) -> None:
        """Before any other stop (a crash, the end of ``start``): bound it as well."""
        self.bound_stop()
        super().on_worker_shutdown()

    def bound_stop(self) -> None:
        """The consumer's stop gets :data:`~moisson.stopping.CLOSE_S`, the producer
        :data:`~moisson.stopping.FLUSH_S` to deliver what it holds. Nothing is lost: what
        the changelog did not get, the restarted worker applies again (the positions
        live in the same state as the doubles)."""
        bound_consumer_stop(self.app.consumer, stopping.CLOSE_S)
        bound_producer_stop(self.app.producer, stopping.FLUSH_S)


def export_metrics(
    app: ProcessorApp, metrics: ProcessorMetrics, server: MetricsServer, faust_monitor: bool
) -> None:
    """Say where ``server`` serves ``metrics`` once the worker has started (faust's log
    is set up by then; port 0 is discovered this way); with ``faust_monitor``, faust's
    own monitor (``moisson_faust_*``) joins them on the same registry, so faust's web
    server stays off."""
    if faust_monitor:
        from faust.sensors.prometheus import setup_prometheus_sensors

        # The prefix defaults to the app id, which every isolated run changes.
        setup_prometheus_sensors(app, registry=metrics.registry, name_prefix="moisson_faust")

    async def say_where() -> None:
        log.info("%s metrics: %s", server.what, server.url)

    app.task(say_where)


def __getattr__(name: str) -> Any:
    """``app``, for faust's ``-A processors.worker``: built from the environment once; a
    taken metrics port ends the process with the ``error:``/``fix:`` lines."""
    if name == "app":
        global app
        try:
            app = build(Settings())
        except MetricsError as exc:
            sys.stderr.write(f"error: {exc}\nfix: {exc.fix}\n")
            raise SystemExit(1) from None
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
