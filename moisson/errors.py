"""The one error type a command renders as an ``error:`` line and a ``fix:`` line."""

from __future__ import annotations


class MoissonError(Exception):
    """Something the user can fix; ``fix`` says how (None when there is nothing to say)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class Unreachable(MoissonError):
    """A service (Kafka, PostgreSQL, the schema registry) did not answer."""
