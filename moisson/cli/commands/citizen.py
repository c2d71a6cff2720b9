"""``moisson citizen``: one citizen's file, read from PostgreSQL."""

from __future__ import annotations

import click

from moisson.cli.base import (
    fail,
    out,
    settings_from,
)
from moisson.cli.params import (
    database_option,
    option,
)
from moisson.panels import citizen_panel


@click.command()
@click.argument("citizen_id")
@database_option
@option(
    "--last",
    envvar="CITIZEN_LAST",
    type=click.IntRange(min=1),
    default=10,
    help="How many ledger entries to show.",
)
def citizen(citizen_id: str, database_url: str | None, last: int) -> None:
    """Print what the harvester knows about CITIZEN_ID, read from PostgreSQL."""
    from sqlalchemy.exc import OperationalError

    from sinks.postgres.reader import PostgresReader

    s = settings_from(database_url=database_url)
    try:
        pg = PostgresReader(s.database.sqlalchemy_url(), s.database.schema_name)
        profile = pg.profiles([citizen_id]).get(citizen_id)
        ledger = pg.ledger(citizen_id) if profile else []
        periods = pg.blacklist_rows(citizen_id)
    except OperationalError as exc:
        fail(f"cannot read PostgreSQL: {exc.orig}", "set DATABASE_URL (or moisson stack up)")
    if profile is None:
        fail(f"no citizen {citizen_id!r} in the database", "ids look like c0000042")
    out.print(citizen_panel(profile, ledger[-last:], periods))
