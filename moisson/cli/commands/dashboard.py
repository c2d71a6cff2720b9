"""``moisson dashboard``: the read-only classroom page."""

from __future__ import annotations

import click

from moisson.cli.base import (
    console,
    fail,
    settings_from,
)
from moisson.cli.params import (
    DEFAULTS,
    database_option,
    kafka_option,
    option,
    prefix_option,
)


@click.command()
@kafka_option
@prefix_option
@database_option
@option("--host", envvar="DASHBOARD_HOST", default="127.0.0.1", help="Interface to listen on.")
@option(
    "--port",
    envvar="DASHBOARD_PORT",
    type=click.IntRange(1, 65535),
    default=8350,
    help="Port to listen on.",
)
@option(
    "--allowed-hosts",
    envvar="DASHBOARD_ALLOWED_HOSTS",
    default=DEFAULTS.dashboard.allowed_hosts,
    help="Comma-separated names browsers reach it by, besides 127.0.0.1, localhost, [::1] "
    "and --host (any other Host header gets 421).",
)
@option(
    "--max-stream-clients",
    envvar="DASHBOARD_MAX_STREAM_CLIENTS",
    type=click.IntRange(min=1),
    default=DEFAULTS.dashboard.max_stream_clients,
    help="Browsers on the live stream at once; the next one gets 503.",
)
@option(
    "--events-max-bytes",
    envvar="DASHBOARD_EVENTS_MAX_BYTES",
    type=click.IntRange(min=0),
    default=DEFAULTS.dashboard.events_max_bytes,
    help="Memory the events kept for the What if page may take; the oldest go first.",
)
@click.option("--follow", multiple=True, help="key=citizen_id to offer on the overview.")
def dashboard(
    kafka: str,
    topic_prefix: str,
    database_url: str | None,
    host: str,
    port: int,
    allowed_hosts: str,
    max_stream_clients: int,
    events_max_bytes: int,
    follow: tuple[str, ...],
) -> None:
    """Serve the read-only dashboard: live harvest, scores, blacklist, citizen files."""
    from moisson import stopping
    from moisson.dashboard.server import serve
    from sinks.postgres.tables import UnsupportedDatabase

    stopping.on_stop_signals()
    s = settings_from(kafka=kafka, topic_prefix=topic_prefix, database_url=database_url)
    s = s.replace(
        dashboard={
            "allowed_hosts": allowed_hosts,
            "max_stream_clients": max_stream_clients,
            "events_max_bytes": events_max_bytes,
        }
    )
    spotlight = dict(item.split("=", 1) for item in follow if "=" in item)
    try:
        serve(
            s,
            host,
            port,
            spotlight,
            shutdown_timeout=stopping.CLOSE_S,
            listening=lambda: console.print(f"dashboard on http://{host}:{port}/"),
        )
    except UnsupportedDatabase as exc:
        fail(str(exc), exc.fix)
