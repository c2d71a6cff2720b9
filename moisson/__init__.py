"""moisson: glue for the harvesting pipeline (settings, CLI, the local stack)."""

__version__ = "0.1.0"
