"""``moisson topics``: create moisson's topics (what compose runs first)."""

from __future__ import annotations

import click

from moisson.cli.base import (
    console,
    fail,
    kafka_unreachable,
    settings_from,
)
from moisson.cli.params import (
    kafka_option,
    partitions_option,
    prefix_option,
)
from moisson.stack.health import wanted_topics


@click.command()
@kafka_option
@partitions_option
@prefix_option
def topics(kafka: str, partitions: int, topic_prefix: str) -> None:
    """Create moisson's topics when missing, set the configs moisson wants on those
    that exist (compaction of the doubles, positions, sanctions and blacklist, the
    dead letters' retention), check they all exist, and exit.

    `moisson sensors` creates missing topics too before publishing; docker compose runs
    this once so that every service starts on existing topics. The replication factor
    comes from KAFKA_REPLICATION_FACTOR (default 1); compaction from
    TOPICS_COMPACT_SEGMENT_S and TOPICS_COMPACT_SEGMENT_BYTES.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from producers.publisher import ensure_topics, fix_configs

    s = settings_from(kafka=kafka, partitions=partitions, topic_prefix=topic_prefix)
    try:
        admin = KafkaAdminClient(**s.kafka.client_kwargs())
    except KafkaError as exc:
        kafka_unreachable(s, exc)
        return
    problem: Exception | None = None
    try:
        fixed: dict[str, dict[str, str]] = {}
        try:
            created = ensure_topics(s)
            fixed = fix_configs(s)
        except KafkaError as exc:  # e.g. more replicas than brokers: said below
            created, problem = [], exc
        missing = sorted(set(wanted_topics(s)) - set(admin.list_topics()))
    finally:
        admin.close()
    if missing or problem:
        fail(
            f"Kafka did not create {', '.join(missing) or 'every topic'}"
            + (f": {problem}" if problem else ""),
            f"KAFKA_REPLICATION_FACTOR ({s.kafka.replication_factor}) must not exceed "
            "the number of brokers; see the broker's log",
        )
    for name in wanted_topics(s):
        mark = "created" if name in created else "exists "
        console.print(f"[green]✓[/] {mark} {name}", highlight=False)
    for name, configs in fixed.items():
        said = ", ".join(f"{k}={v}" for k, v in sorted(configs.items()))
        console.print(f"[yellow]✓[/] fixed   {name}: {said}", highlight=False)
