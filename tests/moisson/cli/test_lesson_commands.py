"""The lesson plan's commands (docs/lesson.md) are real: every ``moisson …`` line of its
code blocks names an existing command path, gives only that command's options, with
values click accepts; every ``make X`` is a Makefile target. Parsed by click itself
(``resolve_command`` and ``make_context``, as ``moisson`` parses a command line), never
run."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from moisson.cli import main

ROOT = Path(__file__).parents[3]
LESSON = ROOT / "docs" / "lesson.md"
MAKEFILE = ROOT / "Makefile"


def code_lines(markdown: str) -> list[str]:
    """The lines inside fenced code blocks (```), stripped, without blanks or comments."""
    lines, inside = [], False
    for raw in markdown.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            inside = not inside
            continue
        if inside and line and not line.startswith("#"):
            lines.append(line)
    assert not inside, "an unclosed code block"
    return lines


LINES = code_lines(LESSON.read_text(encoding="utf-8"))
MOISSON = list(dict.fromkeys(line for line in LINES if line.startswith("moisson ")))
MAKE = list(dict.fromkeys(line for line in LINES if line.startswith("make ")))


def make_targets(makefile: str) -> set[str]:
    """Every explicit target a rule names (``target: prerequisites``), read-only."""
    targets = set()
    for line in makefile.splitlines():
        m = re.match(r"^([A-Za-z0-9_./$()-][^:=#\t]*?)\s*::?(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


def parse(line: str) -> click.Context:
    """``line`` parsed as ``moisson`` would parse it, down to the command it names: each
    group resolves the next word to a sub-command (or fails with "No such command"),
    and the command's own ``make_context`` parses the rest (an unknown option or a
    value outside a choice raises :class:`click.UsageError`). Nothing is invoked."""
    words = shlex.split(line, comments=True)
    assert words[0] == "moisson", line
    ctx = main.make_context("moisson", words[1:])
    cmd: click.Command = main
    while isinstance(cmd, click.Group):
        # What Group.invoke hands on: the sub-command's name, then its arguments.
        rest = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        if not rest:
            raise click.UsageError(f"{line!r} names a group, not a command", ctx)
        name, sub, args = cmd.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        ctx = sub.make_context(name, args, parent=ctx)
        cmd = sub
    return ctx


def given_flags(line: str) -> list[str]:
    return [w.split("=", 1)[0] for w in shlex.split(line, comments=True) if w.startswith("--")]


def every_command(cmd: click.Command) -> Iterator[click.Command]:
    """``cmd`` and every command below it."""
    yield cmd
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            yield from every_command(sub)


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The options' env vars unset, so only the lesson's own words are checked."""

    for cmd in every_command(main):
        for p in cmd.params:
            envvars = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or ())
            for var in envvars:
                monkeypatch.delenv(var, raising=False)


def test_the_lesson_gives_its_commands_in_code_blocks() -> None:
    assert len(MOISSON) >= 5, MOISSON
    assert MAKE, "the lesson starts the demo with `make demo`"
    # Every line of a code block is a command the test checks: nothing slips past it.
    assert set(LINES) == {*MOISSON, *MAKE}, set(LINES) - {*MOISSON, *MAKE}
    paths = {tuple(w for w in shlex.split(line)[1:3] if not w.startswith("-")) for line in MOISSON}
    assert {("demo",), ("whatif",)} <= {p[:1] for p in paths}


def check_moisson(line: str) -> None:
    """``line`` names a command and gives only that command's options."""
    ctx = parse(line)
    assert ctx.command is not main
    known = {o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts)}
    for flag in given_flags(line):
        assert flag in known, f"{line!r}: {flag} is not an option of `{ctx.command_path}`"


@pytest.mark.parametrize("line", MOISSON)
def test_each_moisson_line_parses_with_only_its_commands_options(line: str) -> None:
    check_moisson(line)


def test_the_lessons_values_reach_the_commands_parameters() -> None:
    """The parse is click's own: values land in the parameters, typed and validated."""
    harvest = next(line for line in MOISSON if "--harvest" in line)
    assert parse(harvest).params["harvest"] == ("metro", "camera")
    pseudo = next(line for line in MOISSON if "--pseudonymise" in line)
    assert parse(pseudo).params["pseudonymise"] is True
    whatif = next(line for line in MOISSON if line.startswith("moisson whatif --set"))
    assert parse(whatif).params["sets"] == ("camera.association=0",)


@pytest.mark.parametrize(
    "line",
    [
        "moisson demo --made-up-flag",
        "moisson demo --pseudonymize",  # the American spelling is not the option
        "moisson demo --harvest metro --harvest library",  # not a sensor kind
        "moisson demo --port 99999",  # outside the range
        "moisson whatif --sett camera.association=0",
        "moisson citizens c0000301",  # no such command
        "moisson stack",  # a group alone is not a command
        "moisson stack upp",
    ],
)
def test_a_made_up_command_flag_or_value_fails(line: str) -> None:
    with pytest.raises(click.UsageError):
        parse(line)


@pytest.mark.parametrize("line", MAKE)
def test_each_make_line_names_a_makefile_target(line: str) -> None:
    targets = make_targets(MAKEFILE.read_text(encoding="utf-8"))
    assert {"demo", "test", "install"} <= targets  # the reader finds the Makefile's rules
    words = shlex.split(line, comments=True)
    named = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    assert named, line
    for target in named:
        assert target in targets, f"{line!r}: no target {target!r} in the Makefile"


def test_a_made_up_make_target_is_not_found() -> None:
    assert "lesson" not in make_targets(MAKEFILE.read_text(encoding="utf-8"))
