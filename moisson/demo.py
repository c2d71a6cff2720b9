"""`moisson demo`: a short pipeline end to end, then the top and bottom doubles.

(The classroom demo with a dashboard comes later; this proves the whole path.)
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from moisson.settings import Settings, configure


@contextlib.contextmanager
def services(settings: Settings, broker: str, workdir: Path, console: Console) -> Iterator[None]:
    """Start local Kafka and PostgreSQL unless the settings point at running ones."""
    from moisson.stack import EmbeddedPostgres, ServiceError, choose_broker

    started: list[Any] = []
    try:
        if not settings.kafka_given:
            k, why = choose_broker(
                broker, workdir / "kafka", settings.stack.kafka_version, settings.stack.cache_dir
            )
            with console.status(f"starting Kafka ({why})…"):
                settings.kafka.bootstrap_servers = k.start()
            started.append(k)
            console.print(f"[green]✓[/] {k.describe()} in {k.start_seconds:.1f}s")
        if not settings.database_given:
            pg = EmbeddedPostgres(workdir / "postgres")
            with console.status("starting PostgreSQL…"):
                from pydantic import SecretStr

                settings.database.url = SecretStr(pg.start())
            started.append(pg)
            console.print(f"[green]✓[/] {pg.describe()} in {pg.start_seconds:.1f}s")
        yield
    except ServiceError as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        for svc in reversed(started):
            svc.stop()


def run_demo(
    *,
    citizens: int,
    days: int,
    seed: int,
    speed: float,
    broker: str,
    timeout: float,
    console: Console,
    out: Console,
    publish: Callable[..., int],
    fail: Callable[..., None],
) -> None:
    from moisson import pipeline
    from moisson.cli import citizen_panel, profiles_table, tmpdir
    from processors.fold import Event, fold_all
    from producers.city import generate_events
    from producers.publisher import KafkaSanctions, ensure_topics
    from sinks.postgres import PostgresSink

    settings = configure(Settings())
    run = uuid.uuid4().hex[:8]
    settings.topics.prefix = f"demo-{run}."
    settings.processor.app_id = f"moisson-demo-{run}"
    settings.database.schema_name = f"demo_{run}"
    workdir = tmpdir("moisson-demo-")
    settings.processor.data_dir = workdir / "faust"
    with services(settings, broker, workdir, console):
        ensure_topics(settings)
        with console.status("starting the harvester (faust worker) and the sink…"):
            worker, joined = pipeline.start_worker_ready(settings, workdir / "worker.log")
            sink_proc = pipeline.start_sink(settings, workdir / "sink.log")
        console.print(f"[green]✓[/] harvester ready in {joined:.1f}s")
        pg = PostgresSink(settings.database.sqlalchemy_url(), settings.database.schema_name)
        listener = KafkaSanctions(settings).start()

        class Live:
            def is_blacklisted(self, cid: str) -> bool:
                return listener.is_blacklisted(cid)

            def observe(self, event: Any) -> None:
                pass

        published: list[Any] = []
        try:
            console.print(
                f"{citizens} citizens live {days} simulated day(s) at {speed:g}× "
                "real time; the sensors obey the sanctions topic"
            )
            publish(
                settings,
                generate_events(seed, citizens, None, None, days, Live()),
                None,
                speed,
                0.0,
                published,
            )
            count = len(published)
            expected = fold_all(Event(e.kind, e.record) for e in published)
            started = time.monotonic()

            def alive() -> str | None:
                for name, proc in (("worker", worker), ("sink", sink_proc)):
                    if proc.poll() is not None:
                        return f"the {name} exited (code {proc.returncode}); see {workdir}"
                return None

            with console.status("waiting for the doubles to reach PostgreSQL…") as status:

                def probe() -> int:
                    n = sum(int(p["version"]) for p in pg.profiles().values())
                    status.update(f"doubles in PostgreSQL hold {n:,} of {count:,} events")
                    return n

                pipeline.wait_for(probe, lambda n: n >= count, timeout, alive=alive)
            profiles = pg.profiles()
            console.print(
                f"[green]✓[/] {count:,} events folded into {len(profiles):,} doubles; "
                f"caught up {time.monotonic() - started:.1f}s after the last event"
            )
            exact = all(profiles[c]["score"] == d["score"] for c, d in expected.items())
            console.print(
                "[green]✓[/] every score equals the offline oracle's"
                if exact
                else "[red]✗[/] some scores differ from the offline oracle's"
            )
            ranked = sorted(profiles.values(), key=lambda p: (p["score"], p["citizen_id"]))
            out.print(profiles_table("Most trusted", ranked[::-1][:5]))
            out.print(profiles_table("Least trusted", ranked[:5]))
            denied = sum(1 for e in published if e.record.get("outcome") in ("DENIED", "REFUSED"))
            listed = [p for p in ranked if p["blacklisted"]]
            out.print(
                f"{len(listed)} citizen(s) on the blacklist; gates and terminals refused "
                f"them {denied} time(s)."
            )
            if listed:
                worst = listed[0]["citizen_id"]
                out.print(
                    citizen_panel(
                        profiles[worst],
                        pg.ledger(worst)[-8:],
                        [b for b in pg.blacklist_rows() if b["citizen_id"] == worst],
                    )
                )
        except (TimeoutError, RuntimeError) as exc:
            fail(str(exc), f"look at the logs in {workdir}")
        finally:
            listener.stop()
            pipeline.stop(sink_proc)
            pipeline.stop(worker)
            pg.close()
