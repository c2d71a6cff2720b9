"""The commands the README and every page of docs/ give are real: each ``moisson …`` line
of their code blocks parses as ``moisson`` would parse it (click itself, as in
:mod:`tests.moisson.cli.test_lesson_commands`, whose helpers this reuses), and each
``make …`` line names Makefile targets. Nothing is run.

A code block line is normalised the way a shell reads it before the check: a ``$``
prompt, leading ``VAR=value`` assignments and a path before ``moisson`` (``.venv/bin/``)
are dropped, a line ending in ``\\`` continues on the next, ``&&``, ``||``, ``;``, ``|``
and a trailing ``&`` separate commands, ``$(…)`` is a command of its own, and a
``moisson`` word inside another command (``docker compose exec sink moisson dlq``)
starts one. Lines that are not ``make`` or ``moisson`` commands (``docker``, ``curl``,
the picture) are not checked here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from moisson.cli import main
from tests.moisson.cli.test_lesson_commands import (
    MAKEFILE,
    ROOT,
    check_moisson,
    code_lines,
    every_command,
    make_targets,
    no_env,  # noqa: F401  (the autouse fixture: the options' env vars unset)
)

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
IMAGE = re.compile(r"^moisson:[\w.-]+$")


def joined(lines: list[str]) -> list[str]:
    """Lines ending in a backslash joined to the next, as the shell reads them."""
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + line
        else:
            out.append(line)
    return out


def is_moisson(word: str, words: list[str]) -> bool:
    """``moisson``, a path to it (``.venv/bin/moisson``), or the moisson image whose
    entrypoint it is, after ``docker run`` (``docker run … moisson:dev sink``)."""
    if word == "moisson" or (word.endswith("/moisson") and not re.search(r"[=:]", word)):
        return True
    return words[:2] == ["docker", "run"] and IMAGE.match(word) is not None


def commands(line: str) -> list[str]:
    """The ``make`` and ``moisson`` commands in one shell line, each as ``make …`` or
    ``moisson …`` with its own words only."""
    found = [c for inner in SUBSTITUTION.findall(line) for c in commands(inner)]
    line = SUBSTITUTION.sub("SUBSTITUTED", line.removeprefix("$ "))
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments: list[list[str]] = [[]]
    for word in lexer:
        if word in OPERATORS:
            segments.append([])
        else:
            segments[-1].append(word)
    for words in segments:
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]
        if words and words[0] == "make":
            found.append(shlex.join(words))
            continue
        starts = [i for i, w in enumerate(words) if is_moisson(w, words)]
        if starts:
            found.append(shlex.join(["moisson", *words[starts[0] + 1 :]]))
    return found


def page_commands(page: Path) -> list[str]:
    lines = joined(code_lines(page.read_text(encoding="utf-8")))
    return list(dict.fromkeys(c for line in lines for c in commands(line)))


CASES = [
    pytest.param(page, command, id=f"{page.relative_to(ROOT)}: {command}")
    for page in PAGES
    for command in page_commands(page)
]
MOISSON = [c for c in CASES if c.values[1].startswith("moisson ")]
MAKE = [c for c in CASES if c.values[1].startswith("make ")]


@pytest.fixture(autouse=True)
def paths_need_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recording or rules file the page names is the reader's (``city/``,
    ``variant.toml``): only that check of a path is lifted, every other one stays."""

    for cmd in every_command(main):
        for p in cmd.params:
            if isinstance(p.type, click.Path) and p.type.exists:
                monkeypatch.setattr(p.type, "exists", False)


def check_make(line: str) -> None:
    targets = make_targets(MAKEFILE.read_text(encoding="utf-8"))
    named = [w for w in shlex.split(line)[1:] if not w.startswith("-") and "=" not in w]
    assert named, f"{line!r} names no target"
    for target in named:
        assert target in targets, f"{line!r}: no target {target!r} in the Makefile"


def test_the_pages_give_their_commands_in_code_blocks() -> None:
    assert (ROOT / "docs" / "lesson.md") in PAGES
    readme = {c.values[1] for c in CASES if c.values[0] == ROOT / "README.md"}
    assert {"make demo", "make test", "make unit"} <= readme
    assert any(c.startswith("moisson classroom ") for c in readme)
    assert any(c.startswith("moisson verify ") for c in readme)
    assert len(MOISSON) >= 30 and len(MAKE) >= 10, (len(MOISSON), len(MAKE))


def test_the_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in PAGES[1:] if f"](docs/{p.name})" not in readme]
    assert not unlinked, f"README.md's index does not link {unlinked}"


@pytest.mark.parametrize(("page", "line"), MOISSON)
def test_each_moisson_line_parses(page: Path, line: str) -> None:
    check_moisson(line)


@pytest.mark.parametrize(("page", "line"), MAKE)
def test_each_make_line_names_a_makefile_target(page: Path, line: str) -> None:
    check_make(line)


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("$ moisson dlq", ["moisson dlq"]),
        ("FOO=1 BAR='a b' moisson demo --seed 7", ["moisson demo --seed 7"]),
        (".venv/bin/moisson process &   # the worker", ["moisson process"]),
        ('eval "$(.venv/bin/moisson stack env)"', ["moisson stack env"]),
        ("docker compose exec sink moisson citizen c0000042", ["moisson citizen c0000042"]),
        ("make install && moisson rules | less", ["make install", "moisson rules"]),
        ('make bench ARGS="--only H"', ["make bench 'ARGS=--only H'"]),
        ("docker run -e DATABASE_URL=postgresql://h/moisson moisson:dev sink", ["moisson sink"]),
        ("docker build -t moisson:dev .", []),
        ("docker compose ps -a", []),
    ],
)
def test_shell_lines_are_normalised_to_their_commands(shell: str, expected: list[str]) -> None:
    assert commands(shell) == expected


def test_a_continued_line_is_one_command() -> None:
    lines = code_lines("```sh\nmoisson replay city/ \\\n    --speed max\n```\n")
    assert joined(lines) == ["moisson replay city/ --speed max"]


@pytest.mark.parametrize(
    "line",
    [
        "moisson nosuchcmd",
        "FOO=1 .venv/bin/moisson demo --no-such-flag",
        "docker compose exec sink moisson stack upp",
        "make nosuchtarget",
        "make bench ARGS=--only H",  # H unquoted is a second target, not part of ARGS
    ],
)
def test_a_made_up_command_or_target_fails(line: str) -> None:
    (command,) = commands(line)
    with pytest.raises((click.UsageError, AssertionError)):
        if command.startswith("make "):
            check_make(command)
        else:
            check_moisson(command)
