"""One error base: every error a user is shown carries its message and its fix, and the
``moisson`` group renders any a command lets through as an ``error:`` and a ``fix:`` line."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from moisson.classroom.room import Refused as RoomRefused
from moisson.cli.main import Moisson
from moisson.demo import DemoError
from moisson.errors import MoissonError
from moisson.metrics import MetricsError
from moisson.ops.recording import RecordingError
from moisson.ops.recording_manifest import ManifestError
from moisson.ops.replay import Refused as ReplayRefused
from moisson.preflight import PreflightError
from moisson.stack import ServiceError


@pytest.mark.parametrize(
    "exc",
    [
        PreflightError("m", "f"),
        MetricsError("m", "f"),
        DemoError("m", "f"),
        ServiceError("m", "f"),
        RecordingError("m", "f"),
        ManifestError("m", "f"),
        ReplayRefused("m", "f"),
        RoomRefused(409, "m", "f"),
    ],
    ids=lambda e: type(e).__qualname__,
)
def test_every_error_carries_its_message_and_fix(exc: MoissonError):
    assert isinstance(exc, MoissonError)
    assert (str(exc), exc.message, exc.fix) == ("m", "m", "f")


def test_the_old_bases_still_catch_them():
    assert isinstance(MetricsError("m", "f"), RuntimeError)
    assert isinstance(ServiceError("m"), RuntimeError)
    assert isinstance(ManifestError("m", "f"), ValueError)
    assert isinstance(ReplayRefused("m", "f"), ValueError)
    assert RoomRefused(503, "m", "f").status == 503


def group_raising(exc: Exception) -> click.Group:
    @click.group(cls=Moisson)
    def cli() -> None:
        pass

    @cli.command()
    def boom() -> None:
        raise exc

    return cli


def test_the_group_shows_an_error_and_its_fix_and_exits_1():
    res = CliRunner().invoke(group_raising(DemoError("it broke", "mend it")), ["boom"])
    assert res.exit_code == 1
    assert res.output == "error: it broke\nfix: mend it\n"


def test_an_error_without_a_fix_is_one_line():
    res = CliRunner().invoke(group_raising(DemoError("it broke")), ["boom"])
    assert (res.exit_code, res.output) == (1, "error: it broke\n")


def test_other_exceptions_are_not_caught():
    res = CliRunner().invoke(group_raising(KeyError("k")), ["boom"])
    assert isinstance(res.exception, KeyError)
