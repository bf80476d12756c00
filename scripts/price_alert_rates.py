"""Price alerts per symbol-year, before and after a detector change, as JSON (docs/anomalies.md).

    sentinel evaluate anomalies --input DIR --out OUT --forecaster lstm --files > new.txt
    (the same at the older commit, whose harness prints a per-file table, > old.txt)
    python scripts/price_alert_rates.py --input DIR --old old.txt --new new.txt --label daily

Alert counts are each harness's own (cooldowns and re-arming included); the span of each
symbol comes from its CSV, so the rate is alerts / (symbols x years covered).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export.prices import price_files, read_price_csv  # noqa: E402

YEAR_MS = 365.25 * 86_400_000


def counts(text: str) -> dict[str, int]:
    """Per-file alert counts from either harness's output (``f.csv: ... alerts=N`` or its table)."""
    found = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+\.csv): .*\balerts=(\d+)", text, re.M)}
    if not found:
        found = {m.group(1): int(m.group(2))
                 for m in re.finditer(r"^(\S+\.csv)\s+\d+\s+(\d+)\s+[\d.]+\s+[\d.]+$", text, re.M)}
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True)
    p.add_argument("--old", required=True)
    p.add_argument("--new", required=True)
    p.add_argument("--label", required=True)
    args = p.parse_args()
    files = price_files(Path(args.input))
    years = {f.name: float((s.ts_ms[-1] - s.ts_ms[0]) / YEAR_MS) for f in files for s in [read_price_csv(f)]}
    out = {"label": args.label, "symbols": len(files), "symbol_years": round(sum(years.values()), 3)}
    for name in ("old", "new"):
        per_file = counts(Path(getattr(args, name)).read_text())
        total = sum(per_file.values())
        out[name] = {"alerts": total, "per_symbol_year": round(total / sum(years.values()), 2),
                     "files": per_file}
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
