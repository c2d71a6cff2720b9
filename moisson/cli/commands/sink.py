"""``moisson sink``: doubles, the ledger and the blacklist into PostgreSQL."""

from __future__ import annotations

import click

from moisson.cli.base import (
    console,
    fail,
    kafka_unreachable,
    serve_metrics,
    settings_from,
)
from moisson.cli.params import (
    DEFAULTS,
    database_option,
    kafka_option,
    metrics_port_option,
    option,
    prefix_option,
)


@click.command()
@kafka_option
@prefix_option
@database_option
@option(
    "--group-id",
    envvar="SINK_GROUP_ID",
    default=DEFAULTS.sink.group_id,
    help="Kafka consumer group of the sink.",
)
@option(
    "--batch-size",
    envvar="SINK_BATCH_SIZE",
    type=click.IntRange(min=1),
    default=DEFAULTS.sink.batch_size,
    help="Doubles per database transaction.",
)
@metrics_port_option("METRICS_SINK_PORT", DEFAULTS.metrics.sink_port)
def sink(
    kafka: str,
    topic_prefix: str,
    database_url: str | None,
    group_id: str,
    batch_size: int,
    metrics_port: int,
) -> None:
    """Write the processor's outputs into PostgreSQL, idempotently: doubles into
    `citizen_profiles`, the ledger stream into `score_ledger`, period updates into
    `blacklist`. A record PostgreSQL would refuse goes to the sink's dead-letter topic
    (`moisson dlq --sink`) with its reason, and the sink goes on."""
    from kafka.errors import KafkaError
    from sqlalchemy.exc import OperationalError

    from moisson import stopping
    from moisson.metrics import SinkMetrics
    from producers.publisher import close_producer, ensure_topics, make_producer
    from sinks.dead_letters import DeadLetterTopic
    from sinks.postgres.reader import PostgresReader
    from sinks.postgres.tables import UnsupportedDatabase
    from sinks.postgres.writer import PostgresSink
    from sinks.runner import make_consumer, run_sink

    stop = stopping.on_stop_signals()
    s = settings_from(kafka=kafka, topic_prefix=topic_prefix, database_url=database_url)
    try:
        from processors.core.scoring import load_rules

        pg = PostgresSink(
            s.database.sqlalchemy_url(), s.database.schema_name, load_rules(s.processor.rules_path)
        )
    except OperationalError as exc:
        fail(
            f"cannot reach PostgreSQL: {exc.orig}",
            "start it (moisson stack up) or set DATABASE_URL",
        )
        return
    except UnsupportedDatabase as exc:  # sinks import no moisson.*: not a MoissonError
        fail(str(exc), exc.fix)
        return
    try:
        ensure_topics(s)  # the sink's dead-letter topic among them
        dead_letters = DeadLetterTopic(make_producer(s), s.topics.names.sink_dlq)
    except KafkaError as exc:
        kafka_unreachable(s, exc)
    metrics = SinkMetrics()
    reader = PostgresReader(s.database.sqlalchemy_url(), s.database.schema_name)
    metrics.count_blacklisted(reader.blacklisted_count)
    s = s.replace(metrics={"sink_port": metrics_port})
    server = serve_metrics(s, metrics.registry, "sink")
    topics = [s.topics.doubles, s.topics.ledger, s.topics.blacklist]
    consumer = make_consumer(topics, group_id, **s.kafka.client_kwargs())
    console.print(
        f"sink: {s.topics.doubles}, {s.topics.ledger}, {s.topics.blacklist} → citizen_profiles,"
        f" score_ledger, blacklist (group {group_id})"
    )
    with stop.polled():  # a signal ends the loop between batches, offsets committed
        stats = run_sink(
            consumer,
            pg,
            batch_size,
            s.sink.poll_timeout_ms,
            stop,
            retry_max_s=s.sink.retry_max_s,
            metrics=metrics,
            dead_letters=dead_letters,
        )
    consumer.close(timeout_ms=int(stopping.CLOSE_S * 1000))
    close_producer(dead_letters.producer)
    pg.close()
    if server is not None:
        server.close()
    reader.close()
    console.print(
        f"sink stopped: {stats.consumed:,} records consumed in {stats.batches:,} batches,"
        f" {stats.dead_letters:,} set aside on {s.topics.names.sink_dlq}"
    )
