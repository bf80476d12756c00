"""Render the fault-suite table of docs/reliability.md from a committed ``fault_suite.py`` output.

    python scripts/fault_tables.py docs/results/faults   # prints the markdown table

One row per test and run: the seed (replay it with ``FAULT_SEED``), what was expected and
what was lost, wrong, unexpected or duplicated, from the per-test JSON the fault tests wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("forecasts_expected", "forecasts_lost", "forecast_values_wrong", "forecasts_unexpected",
           "forecast_duplicates", "anomalies_expected", "anomalies_lost", "ticks_missing_from_state",
           "offset_rewinds")


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/faults")
    runs = json.loads((root / "summary.json").read_text())["runs"]
    meta = next((json.loads(p.read_text()) for p in sorted(root.glob("*-*.json"))), {})
    print(f"Runs of `scripts/fault_suite.py` at commit `{meta.get('commit')}`, {meta.get('date')}, "
          f"{meta.get('machine', {}).get('cpus')} cpus, {meta.get('machine', {}).get('platform')}.\n")
    print("| run | seed | test | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " |")
    print("|---|---|---|" + "---:|" * len(COLUMNS))
    for run in runs:
        for test, report in sorted(run["tests"].items()):
            cells = [str(report.get(c, "-")) for c in COLUMNS]
            print(f"| {run['run']} | {run['seed']} | {test} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
