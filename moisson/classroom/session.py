"""`moisson classroom`: one session of the room, from start to erasure.

It starts what the demo starts (the embedded broker and PostgreSQL unless given, a
faust worker, the sink), the crowd, and the room's server in this process: the
projector and the dashboard on loopback and, only when the instructor opens the room
on an interface, the phones' pages on that interface's address. Everything the
session writes lives under its own topic prefix and database schema.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moisson.classroom.live import FETCH_WAIT_MS
from moisson.classroom.room import CODE_ALPHABET, CODE_LENGTH
from moisson.demo import DemoError
from moisson.settings import Settings


@dataclass(frozen=True)
class ClassroomOptions:
    """What the instructor chose (the CLI's flags)."""

    citizens: int = 150
    seed: int = 42
    speed: float = 60.0
    port: int = 8350
    #: The address the room is open on (None: loopback only, for --phones or a rehearsal).
    room_address: str | None = None
    max_students: int = 60
    taps_per_second: int = 2
    phones: int = 0
    phone_every: float = 3.0
    broker: str = "embedded"
    keep_data: bool = False


@dataclass
class Run:
    """One session: its settings once services are up, what the instructor chose, its
    join code and work directory, where it reports, and whether the room was erased."""

    settings: Settings
    opts: ClassroomOptions
    code: str
    workdir: Path
    say: Callable[[str], None]
    ready: Callable[[Urls], None]
    erased: bool = False


@dataclass
class Parts:
    """What the session started before serving: the crowd's city, the sanctions the
    sensors obey, the publisher, the name registry's writer and the child processes."""

    city: Any
    listener: Any
    publisher: Any
    writer: Any
    children: list[Any]


@dataclass
class Urls:
    projector: str
    join: str
    code: str
    workdir: Path


def interface_address(name: str) -> str:
    """The IPv4 address of interface ``name`` (or ``name`` itself if it is an address
    of this machine); a :class:`DemoError` listing the interfaces otherwise."""
    import ipaddress
    import socket

    import psutil

    found = {
        iface: a.address
        for iface, addrs in psutil.net_if_addrs().items()
        for a in addrs
        if a.family == socket.AF_INET
    }
    if name in found:
        return found[name]
    with_ip = {ip: iface for iface, ip in found.items()}
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        if name in with_ip:
            return name
    listed = ", ".join(f"{i} ({a})" for i, a in sorted(found.items())) or "none"
    raise DemoError(
        f"no network interface {name!r} with an IPv4 address on this machine",
        f"pass --open-room with one of: {listed}",
    )


def run(
    settings: Settings,
    opts: ClassroomOptions,
    say: Callable[[str], None],
    ready: Callable[[Urls], None],
) -> None:
    """Run the session until a stop signal (KeyboardInterrupt). Raises
    :class:`DemoError` when it cannot start; stops every process it started."""
    from moisson.stack import ServiceError
    from moisson.stack.base import port_open
    from moisson.stack.provision import isolated, provide

    if port_open("127.0.0.1", opts.port) or (
        opts.room_address and port_open(opts.room_address, opts.port)
    ):
        raise DemoError(f"port {opts.port} is taken", "pass --port with a free one")
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    workdir = Path(tempfile.mkdtemp(prefix="moisson-classroom-"))
    settings = isolated(settings, "room", run=code.lower()).replace(
        stack={"broker": opts.broker},
        # A tap's effect waits for the worker's fetch: on Tansu, up to its whole wait.
        processor={"data_dir": workdir / "faust", "fetch_max_wait_ms": FETCH_WAIT_MS},
    )
    started_here = not settings.kafka_given, not settings.database_given
    session = Run(settings, opts, code, workdir, say, ready)
    try:
        with provide(settings, workdir, say=say) as session.settings:  # its services'
            _session(session)
    except ServiceError as exc:
        raise DemoError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        if not session.erased and not opts.keep_data:
            for part, ours in zip(("kafka", "postgres"), started_here, strict=True):
                if ours:
                    shutil.rmtree(workdir / part, ignore_errors=True)
            if all(started_here):
                say(f"the room's data was deleted with its embedded services ({workdir})")


def _session(run: Run) -> None:
    """The session on running services."""
    from kafka import KafkaProducer

    from moisson.ops import pipeline
    from moisson.resolvers import registry_client
    from producers.city import City
    from producers.publisher import KafkaSanctions, Publisher, ensure_topics
    from sinks.postgres.writer import PostgresSink

    settings, workdir = run.settings, run.workdir
    ensure_topics(settings)
    city = City(run.opts.seed, run.opts.citizens)
    writer = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
    writer.register(city.people)
    listener = KafkaSanctions(settings, fetch_max_wait_ms=FETCH_WAIT_MS).start()
    # A tap is one event: a short linger sends it at once (the city's 50 ms fills batches).
    publisher = Publisher(
        settings,
        KafkaProducer(**settings.kafka.client_kwargs(), linger_ms=5),
        registry=registry_client(settings),
    )
    children: list[Any] = []
    try:
        worker, took = pipeline.start_worker_ready(settings, workdir / "worker.log")
        children.append(worker)
        children.append(pipeline.start_sink(settings, workdir / "sink.log"))
        run.say(
            f"harvester ready in {took:.1f}s; topics {settings.topics.prefix}*, database "
            f"schema {settings.database.schema_name}, logs in {workdir}"
        )
        parts = Parts(city, listener, publisher, writer, children)
        asyncio.run(_serve(run, parts))
    finally:
        listener.stop()
        publisher.close()
        writer.close()
        pipeline.stop_all(children)


async def _serve(run: Run, parts: Parts) -> None:
    from aiohttp import web

    from moisson.classroom import erasure
    from moisson.classroom.clock import SessionClock
    from moisson.classroom.crowd import Crowd
    from moisson.classroom.phones import PhoneStats, run_phones
    from moisson.classroom.room import Room
    from moisson.classroom.server import Classroom
    from moisson.dashboard.server import Dashboard
    from moisson.ops import pipeline

    listener, publisher, children = parts.listener, parts.publisher, parts.children
    settings, opts, code, say = run.settings, run.opts, run.code, run.say
    clock = SessionClock(opts.speed)
    room = Room(opts.max_students, opts.taps_per_second, code=code)
    address = opts.room_address or "127.0.0.1"
    join_url = f"http://{address}:{opts.port}/join?code={code}"
    dashboard = Dashboard.open(settings, address)

    def erase_room() -> erasure.Erasure:
        run.erased = True  # before the children stop: their exit is then expected
        crowd.stop()
        listener.stop()
        dashboard.live.stop()
        pipeline.stop_all(children)
        report = erasure.erase_room(settings)
        say(
            f"room erased in {report.seconds:.1f}s: topics deleted {len(report.topics_deleted)}, "
            f"left {len(report.topics_left)}; rows left "
            + ", ".join(f"{t} {n}" for t, n in report.rows_left.items())
            + f"; schema {report.schema} {'dropped' if report.schema_dropped else 'still there'}"
        )
        return report

    classroom = Classroom(
        dashboard,
        room,
        clock,
        publisher.send,
        listener,
        join_url,
        erase_room,
        lambda cid: erasure.erase_student(settings, cid),
        parts.writer.register,
        lambda: crowd.stop(),
    )
    # No access log: it would keep each phone's address (nothing about a device is kept).
    runner = web.AppRunner(
        classroom.app(), handle_signals=False, shutdown_timeout=1.0, access_log=None
    )
    await runner.setup()
    crowd = Crowd(parts.city, clock, publisher.send, listener).start()
    phones_stop = asyncio.Event()
    phones = None
    try:
        for host in {"127.0.0.1", address}:
            await web.TCPSite(runner, host, opts.port).start()
        projector = f"http://127.0.0.1:{opts.port}/projector"
        run.ready(Urls(projector, join_url, code, run.workdir))
        if opts.phones:
            phones = asyncio.ensure_future(
                run_phones(
                    f"http://127.0.0.1:{opts.port}",
                    code,
                    opts.phones,
                    opts.phone_every,
                    phones_stop,
                    PhoneStats(),
                )
            )
        while True:
            await asyncio.sleep(0.5)
            if crowd.error is not None:
                raise DemoError(
                    f"the crowd stopped: {crowd.error}", f"see the logs in {run.workdir}"
                )
            if phones is not None and phones.done() and phones.exception() is not None:
                say(f"the simulated phones stopped: {phones.exception()}")
                phones = None
            if not run.erased and any(c.poll() is not None for c in children):
                raise DemoError("the worker or the sink exited", f"see the logs in {run.workdir}")
    finally:
        phones_stop.set()
        if phones is not None:
            await asyncio.wait([phones], timeout=3)
        crowd.stop()
        await runner.cleanup()
