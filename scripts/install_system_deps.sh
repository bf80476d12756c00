#!/usr/bin/env bash
# Installs what the Python venv cannot: a JDK and Maven for the dev Kafka broker, Chromium
# (Debian's package) for the report's browser test, and Debian's prometheus package (promtool)
# for the monitoring tests. Idempotent; the last line says what it did (scripts/stage.sh shows it).
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing ${need[*]} with apt-get"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" \
    || { echo "error: could not install ${need[*]}; install them by hand" >&2; exit 1; }
fi
if [ -f scripts/install_prometheus.sh ]; then bash scripts/install_prometheus.sh; fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installed ${need[*]}; java, maven, chromium and promtool present"
else
  echo "java, maven, chromium and promtool present"
fi
