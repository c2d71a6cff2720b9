# Local stand-ins for the third-party services of docker-compose.yml, which cannot be
# pulled here. Built on Debian bookworm from Debian's packages and Maven Central's jars;
# tests/compose/README.md says how each differs from the official image.
#   docker build -f services.Dockerfile --target kafka -t moisson-standin/kafka CONTEXT
# CONTEXT also holds what the harness copies in: jdk/ (the host's JDK 21+),
# kafka-libs/ (Apache Kafka's runtime jars) and apicurio/ (Apicurio Registry's Quarkus app).
FROM moisson-standin/debian:bookworm AS os
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends curl wget ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM os AS java
COPY jdk/ /opt/java/
ENV JAVA_HOME=/opt/java PATH=/opt/java/bin:$PATH LANG=C.UTF-8

# apache/kafka: KAFKA_* env vars become server.properties, as in the official image.
FROM java AS kafka
COPY kafka-libs/ /opt/kafka/libs/
COPY kafka/ /opt/kafka/
RUN useradd --no-log-init --uid 1000 --user-group appuser \
 && mkdir -p /var/lib/kafka/data /opt/kafka/config \
 && chown -R appuser:appuser /var/lib/kafka /opt/kafka/config
USER appuser
ENTRYPOINT ["/opt/kafka/run"]

# apicurio/apicurio-registry: the same Quarkus app; APICURIO_* env vars configure it.
FROM java AS registry
COPY apicurio/ /deployments/
RUN useradd --no-log-init --uid 1001 --user-group jboss
USER jboss
WORKDIR /deployments
ENTRYPOINT ["java", "-Xmx512m", "-jar", "/deployments/quarkus-run.jar"]

# postgres: initdb from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on first start.
FROM os AS postgres
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/*
COPY postgres/entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]

# prom/prometheus: Debian's Prometheus, run as nobody with its data in /prometheus.
FROM os AS prometheus
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
