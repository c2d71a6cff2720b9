"""The ``moisson`` command line: one module per command in ``commands/``, the options
they share in ``params.py``, and the one way to fail in ``base.py``. Logic lives in the
packages; the CLI parses, calls and renders."""

from moisson.cli.main import main

__all__ = ["main"]
