"""``moisson dashboard``: the read-only classroom page."""

from __future__ import annotations

import click

from moisson.cli.base import (
    console,
    settings_from,
)
from moisson.cli.params import (
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
@click.option("--follow", multiple=True, help="key=citizen_id to offer on the overview.")
def dashboard(
    kafka: str,
    topic_prefix: str,
    database_url: str | None,
    host: str,
    port: int,
    follow: tuple[str, ...],
) -> None:
    """Serve the read-only dashboard: live harvest, scores, blacklist, citizen files."""
    from moisson.dashboard.server import serve

    s = settings_from(kafka=kafka, topic_prefix=topic_prefix, database_url=database_url)
    spotlight = dict(item.split("=", 1) for item in follow if "=" in item)
    console.print(f"dashboard on http://{host}:{port}/")
    serve(s, host, port, spotlight)
