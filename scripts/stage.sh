#!/usr/bin/env bash
# One line per set-up stage (`make demo`, `make test`): its name, how long it took and what it
# did; the command's own output is kept in a log and shown only when it fails, so a fresh
# machine's set-up reads as a handful of lines instead of pages of installer chatter.
#   usage: scripts/stage.sh NAME COMMAND [ARGS...]
set -uo pipefail
name=$1; shift
start=$(date +%s.%N)
log=$(mktemp -t "sentinel-stage.XXXXXX.log")
[ -t 1 ] && printf '[  ....] %-15s running...\r' "$name"
"$@" >"$log" 2>&1
rc=$?
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", e - s }')
if [ "$rc" -ne 0 ]; then
  printf '[%s] %-15s FAILED (exit %d); its output:\n' "$elapsed" "$name" "$rc"
  tail -n 40 "$log"
  rm -f "$log"
  exit "$rc"
fi
detail=$(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-100)
printf '[%s] %-15s %s\n' "$elapsed" "$name" "${detail:-done}"
rm -f "$log"
