#!/bin/sh
# Kafka's own script runs this class (the Maven jars carry no bin/ directory).
exec java -Xmx128m -Dlog4j2.configurationFile=/opt/kafka/log4j2.xml \
    -cp '/opt/kafka/libs/*' org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
