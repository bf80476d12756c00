#!/bin/sh
# kafka-run-class.sh of the compose test's apache/kafka stand-in: run CLASS with the jars in
# /opt/kafka/libs, honouring the official scripts' KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS
# and KAFKA_OPTS. The broker logs INFO to stdout, the tools WARN to stderr.
set -eu
class=$1
shift
base=$(cd "$(dirname "$0")/.." && pwd)
if [ "$class" = kafka.Kafka ]; then
  log_config=$base/config/log4j2.properties
else
  log_config=$base/config/tools-log4j2.properties
fi
# shellcheck disable=SC2086  # the *_OPTS variables hold several words on purpose
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent} \
  -Djava.awt.headless=true "-Dlog4j2.configurationFile=$log_config" ${KAFKA_OPTS:-} \
  -cp "$base/libs/*" "$class" "$@"
