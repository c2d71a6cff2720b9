"""Text a sensor, a recording or a dead letter chose prints as itself: no markup, no
escape sequence reaches the terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from moisson.panels import UNPRINTABLE, citizen_panel, shown

# (what a sensor sent, what the terminal shows)
HOSTILE = [
    ("[/]", "[/]"),
    ("[bold]Fahrenheit 451[/bold]", "[bold]Fahrenheit 451[/bold]"),
    ("[link=https://evil.example]x[/link]", "[link=https://evil.example]x[/link]"),
    ("\x1b[2J", "\\x1b[2J"),  # clear the screen
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # set the window title (OSC)
    ("\x9b31m", "\\x9b31m"),  # the one-byte C1 CSI
    ("a\nb\tc\rd\x00e\x7f", "a\\nb\\tc\\rd\\x00e\\x7f"),
    ("\u202eevil", "\\u202eevil"),  # right-to-left override
    ("trailing \\", "trailing \\"),
    ("\\[bold]", "\\[bold]"),
    ("露露 à Saint-Étienne", "露露 à Saint-Étienne"),
    (":thumbs_up: :smile:", ":thumbs_up: :smile:"),  # no emoji codes either
    ("\\[not a tag", "\\[not a tag"),
]


def render(renderable: object) -> str:
    """What a colour terminal receives."""
    buf = io.StringIO()
    Console(file=buf, width=200, force_terminal=True, color_system="truecolor").print(renderable)
    return buf.getvalue()


def printed(sent: str) -> str:
    """What a plain terminal receives for ``shown(sent)``, on one line."""
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None).print(shown(sent), end="", soft_wrap=True)
    return buf.getvalue()


def visible(sent: str) -> str:
    return UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode(), sent)


def test_hostile_text_prints_literally():
    for sent, seen in HOSTILE:
        assert printed(sent) == seen, sent


@given(st.text(alphabet=st.sampled_from("[]/\\:ab=#@ \x1b\x07\x9b\n\u202e露"), max_size=40))
def test_any_markup_like_text_prints_as_itself(sent):
    assert printed(sent) == visible(sent)


@given(st.text(max_size=60))
def test_any_unicode_text_prints_without_a_control_character(sent):
    assert not UNPRINTABLE.search(printed(sent))


def test_a_citizen_file_of_hostile_titles_renders_without_their_sequences():
    evil = "[/][bold]\x1b[2J\x1b]0;pwned\x07\x9b31m"
    when = datetime(2026, 3, 2, tzinfo=UTC)
    profile = {
        "citizen_id": f"c1{evil}",
        "blacklisted": True,
        "score": 300,
        "tier": "C",
        "base_score": 1000,
        "version": 3,
        "metro_count": 1,
        "payment_count": 1,
        "book_count": 1,
        "camera_count": 0,
        "denied_count": 0,
        "places": {f"station{evil}": 1},
        "purchases": {f"shop{evil}": 1},
        "books": {f"title{evil}": 1},
        "associates": {f"friend{evil}": 1},
    }
    entry = {
        "occurred_at": when,
        "rule_id": f"rule{evil}",
        "delta": -50,
        "score_before": 350,
        "score_after": 300,
        "explanation": f"read {evil}",
    }
    period = {"entered_at": when, "lifted_at": None}
    out = render(citizen_panel(profile, [entry], [period]))
    for sequence in ("\x1b[2J", "\x1b]", "\x07", "\x9b"):
        assert sequence not in out
    for shown_literally in ("[/][bold]", "\\x1b[2J", "\\x1b]0;pwned\\x07", "\\x9b31m"):
        assert out.count(shown_literally) >= 6, out
