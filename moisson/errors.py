"""The one error a user is shown: what went wrong, in one line, and what to do about it.

Each package raises its own subclass (:class:`moisson.preflight.PreflightError`,
:class:`moisson.demo.DemoError`…); the CLI renders every one the same way, once
(:func:`moisson.cli.base.fail_with`): an ``error:`` line, then a ``fix:`` line when
there is a fix. ``str(exc)`` is the message alone, as for any exception.
"""

from __future__ import annotations


class MoissonError(Exception):
    """``message``: what went wrong, in one line; ``fix``: what to do about it, or None."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
