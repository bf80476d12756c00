"""The latency run's price batches, from ``sentinel bench --json`` files: size, cycle, inference.

    python scripts/batch_cycle.py docs/results/inline-ticks/*.json

Per file: mean ticks per batch, mean seconds from a batch's first event to its acknowledged
outputs (``sentinel_batch_processing_seconds``) and mean seconds of ``process_ticks``
(``sentinel_inference_seconds``: forecast, detector and records), over both offered rates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    batches = data["runs"]["latency"]["worker_batches"]

    def mean(name: str) -> float:
        return float(batches[name]["mean"])

    return (f"| `{path.stem}` | {data.get('settings_note') or 'defaults'} "
            f"| {mean('sentinel_batch_size/prices'):.1f} "
            f"| {mean('sentinel_batch_processing_seconds/prices') * 1000:.1f} "
            f"| {mean('sentinel_inference_seconds/price-forecast') * 1000:.1f} |")


def main(paths: list[str]) -> int:
    print(f"<!-- rendered by python scripts/batch_cycle.py {' '.join(paths)} -->")
    print("| run | settings | ticks per batch | first event to acknowledged outputs (ms) "
          "| process_ticks (ms) |")
    print("|---|---|---:|---:|---:|")
    for p in paths:
        print(row(Path(p)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
