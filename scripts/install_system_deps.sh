#!/usr/bin/env bash
# Installs what the Python venv cannot: a JDK and Maven for the dev Kafka broker, and
# Debian's prometheus package (promtool) for the monitoring tests. Idempotent.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing ${need[*]} with apt-get"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" \
    || { echo "error: could not install ${need[*]}; install them by hand" >&2; exit 1; }
fi
if [ -f scripts/install_prometheus.sh ]; then bash scripts/install_prometheus.sh; fi
