"""Sinks: persist doubles to PostgreSQL, idempotently."""
