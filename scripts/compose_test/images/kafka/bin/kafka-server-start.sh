#!/bin/sh
# kafka-server-start.sh CONFIG: the broker in the foreground (1 GB heap unless KAFKA_HEAP_OPTS).
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"
