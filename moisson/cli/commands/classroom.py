"""``moisson classroom``: the room is the city, rendered."""

from __future__ import annotations

import logging

import click

from moisson.cli.base import console
from moisson.cli.params import local_broker_option, option, seed_option


@click.command()
@option(
    "--open-room",
    "open_room",
    envvar="CLASSROOM_OPEN_ROOM",
    default=None,
    metavar="INTERFACE",
    help="Open the room to phones on this network interface (wlan0) or address; "
    "without it the room answers this machine only.",
)
@option(
    "--phones",
    envvar="CLASSROOM_PHONES",
    type=click.IntRange(0, 200),
    default=0,
    help="Simulated phones that join and tap: test the room alone before class.",
)
@option(
    "--citizens",
    envvar="CLASSROOM_CITIZENS",
    type=click.IntRange(1, 5000),
    default=150,
    help="The simulated crowd living beside the students.",
)
@seed_option
@option(
    "--speed",
    envvar="CLASSROOM_SPEED",
    type=click.FloatRange(min=1, min_open=False),
    default=60.0,
    help="Simulated seconds per real second (60: an hour a minute). Days also advance "
    "from the projector's Next day button.",
)
@option(
    "--port",
    envvar="CLASSROOM_PORT",
    type=click.IntRange(1, 65535),
    default=8350,
    help="Port of the projector and of the phones' pages.",
)
@option(
    "--max-students",
    envvar="CLASSROOM_MAX_STUDENTS",
    type=click.IntRange(1, 500),
    default=60,
    help="The room's size: joins beyond it are refused.",
)
@option(
    "--taps-per-second",
    envvar="CLASSROOM_TAPS_PER_SECOND",
    type=click.IntRange(1, 20),
    default=2,
    help="Taps a phone may make within one second; more get 429.",
)
@local_broker_option
@click.option(
    "--keep-data",
    is_flag=True,
    envvar="CLASSROOM_KEEP_DATA",
    show_envvar=True,
    help="Keep the embedded services' data after a stop without 'Erase the room' "
    "(default: deleted with them).",
)
def classroom(
    open_room: str | None,
    phones: int,
    citizens: int,
    seed: int,
    speed: float,
    port: int,
    max_students: int,
    taps_per_second: int,
    broker: str,
    keep_data: bool,
) -> None:
    """The room is the city: students' phones in a real pipeline.

    \b
    Starts what `moisson demo` starts (the embedded broker and PostgreSQL, a faust
    worker, the sink) with a simulated crowd, and a projector page at
    http://127.0.0.1:8350/projector that shows the join link, its QR code and code.
    Each tap on a phone is a real sensor event; the harvester scores it; a
    blacklisted student's next metro tap is refused by the gate.

    \b
    The room never opens to the network by default:
      moisson classroom --phones 30            rehearse alone, with 30 simulated phones
      moisson classroom --open-room wlan0      open it to phones on wlan0's network
    Ctrl-C stops everything; the projector's "Erase the room" deletes every topic and
    row of the session and shows that nothing is left.
    """
    from moisson import stopping
    from moisson.classroom.session import ClassroomOptions, Urls, interface_address, run
    from moisson.settings import Settings

    stopping.on_stop_signals()
    stopping.tie_children()
    # kafka-python's selector warns when a busy CPU delays its loop: noise on a projector.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    # A DemoError (the services, the room's address): the moisson group shows it.
    address = interface_address(open_room) if open_room else None
    opts = ClassroomOptions(
        citizens=citizens,
        seed=seed,
        speed=speed,
        port=port,
        room_address=address,
        max_students=max_students,
        taps_per_second=taps_per_second,
        phones=phones,
        broker=broker,
        keep_data=keep_data,
    )

    def ready(urls: Urls) -> None:
        console.print(f"[bold]projector:[/] {urls.projector}", soft_wrap=True)
        console.print(f"[bold]join:[/] {urls.join}  (code {urls.code})", soft_wrap=True)
        if address is None:
            console.print(
                "the room answers this machine only; pass --open-room INTERFACE to let phones join",
                soft_wrap=True,
            )
        if phones:
            console.print(f"{phones} simulated phone(s) are joining…")
        console.print("Ctrl-C stops everything")

    run(
        Settings(),
        opts,
        lambda line: console.print(line, soft_wrap=True, highlight=False),
        ready,
    )
    console.print("[green]✓[/] stopped: no process left behind")
