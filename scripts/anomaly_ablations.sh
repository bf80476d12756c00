#!/usr/bin/env bash
# Ablations of the served detector on the dev corpus: one harness run per variant, JSON in
# docs/results/ablations/ (rendered into docs/anomalies.md by scripts/anomaly_tables.py).
# Usage: scripts/anomaly_ablations.sh [DATA_DIR]   (one process at a time; ~1.5 min per run)
set -euo pipefail
data=${1:-../shared/data/anomaly}
py=${PYTHON:-.venv/bin/python}
out=docs/results/ablations
mkdir -p "$out"
run() {  # name, --set options...
  local name=$1; shift
  local sets=()
  for s in "$@"; do sets+=(--set "$s"); done
  PYTHONPATH=. nice -n 10 "$py" -m sentinel evaluate anomalies --input "$data" \
    --out /tmp/anomaly-ablation-scores --json "${sets[@]}" > "$out/$name.json" 2>/dev/null
}
run 00-default
run 01-no-level components=jump+shift+vol+shape
run 02-no-jump components=level+shift+vol+shape
run 03-no-shift components=level+jump+vol+shape
run 04-no-vol components=level+jump+shift+shape
run 05-no-shape components=level+jump+shift+vol
run 06-plus-fine components=level+jump+shift+vol+shape+fine
run 07-plus-stuck components=level+jump+shift+vol+shape+stuck
run 08-fixed-memory-2000 memory=2000 age_weight=0
run 09-no-refractory refractory=0
run 10-product-not-max combine=product
run 11-no-shape-hold shape_refractory=0
run 12-record-lift-0.15 lift=0.15
