"""Volume alerts per symbol-year on the shared price files, as the worker scores them (docs/anomalies.md).

    PYTHONPATH=. python scripts/volume_alert_rates.py --json docs/results/volume-alerts.json

Each file's bars go through ``streaming.serving.pipeline.score_volume`` (the served detector
on log(1 + volume), one state per symbol), in time order; rows without a volume are skipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export.prices import price_files, read_price_csv  # noqa: E402
from streaming.core.detector import ResidualDetector  # noqa: E402
from streaming.core.schemas import Tick  # noqa: E402
from streaming.core.windows import SymbolState  # noqa: E402
from streaming.serving.pipeline import score_volume  # noqa: E402
from streaming.settings import REPO_ROOT  # noqa: E402

YEAR_MS = 365.25 * 86_400_000
DATA = REPO_ROOT.parent / "shared" / "data" / "prices"
SETS = {"daily": DATA / "daily", "5-minute": DATA / "intraday" / "recent_5min"}


def rate(directory: Path) -> dict[str, object]:
    detector, files, years, total = ResidualDetector(), {}, 0.0, 0
    for path in price_files(directory):
        series = read_price_csv(path)
        state, alerts = SymbolState(), []
        for ts, price, volume in zip(series.ts_ms.tolist(), series.close.tolist(), series.volume.tolist(),
                                     strict=True):
            if volume == volume:  # not NaN
                alert = score_volume(Tick("X", ts, price, volume), state, detector, detector.config.threshold)
                if alert is not None:
                    alerts.append(alert)
        files[path.name] = {"alerts": len(alerts),
                            "severities": {s: sum(a["severity"] == s for a in alerts)
                                           for s in ("low", "medium", "high", "critical")}}
        years += (series.ts_ms[-1] - series.ts_ms[0]) / YEAR_MS
        total += len(alerts)
    return {"directory": str(directory.relative_to(REPO_ROOT.parent)), "files": files, "alerts": total,
            "symbol_years": round(years, 3), "per_symbol_year": round(total / years, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO_ROOT).stdout.strip()
    machine = f"{platform.machine()} {platform.python_version()}"
    out = {"meta": {"command": "PYTHONPATH=. python scripts/volume_alert_rates.py", "commit": commit,
                    "date": time.strftime("%Y-%m-%d"), "machine": machine},
           "runs": {label: rate(d) for label, d in SETS.items() if d.is_dir()}}
    text = json.dumps(out, indent=1, sort_keys=True)
    if args.json:
        args.json.write_text(text + "\n")
    for label, run in out["runs"].items():
        print(f"{label}: {run['alerts']} volume alerts over {run['symbol_years']} symbol-years = "
              f"{run['per_symbol_year']} per symbol-year")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
