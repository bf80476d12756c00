#!/usr/bin/env bash
# Installs Debian's `prometheus` package (the `prometheus` server and `promtool`) for the
# monitoring tests (tests/unit/ops, tests/integration/test_prometheus_scrape.py). Idempotent:
# does nothing when both are already on PATH. Uses sudo only when not root.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log="$(mktemp -t install-prometheus.XXXXXX.log)"
echo "installing Debian's prometheus package (prometheus, promtool) with apt-get"
if ! { $SUDO apt-get update -qq \
       && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
     } >"$log" 2>&1; then
  echo "error: could not install Debian's prometheus package with apt-get (details: $log); install it by hand: apt-get install prometheus" >&2
  exit 1
fi

# The package enables a system service on port 9090 where systemd runs. The tests start their
# own Prometheus on free ports, and `docker compose` publishes 9090, so keep the port free.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || {
  echo "error: the prometheus package installed but promtool/prometheus are not on PATH" >&2
  exit 1
}
echo "installed $(prometheus --version 2>&1 | head -n 1)"
