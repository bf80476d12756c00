"""Price alerts per symbol-year, before and after detector changes, as JSON (docs/anomalies.md).

    sentinel evaluate anomalies --input DIR --out OUT --forecaster lstm --files > new.txt
    python scripts/price_alert_rates.py --input DIR --label daily --new new.txt \\
        --old docs/results/price-alerts.json#old --prev docs/results/price-alerts.json#new
    python scripts/price_alert_rates.py --render docs/results/price-alerts.json

A source is a harness output (``f.csv: ... alerts=N`` lines, or the older per-file table) or
``FILE.json#KEY``, the per-file counts under KEY of an earlier output of this script with the
same label (so the σ detector's counts at ``817f23a`` need not be recomputed at that commit).
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
COLUMNS = ("old", "prev", "new")


def counts(text: str) -> dict[str, int]:
    """Per-file alert counts from either harness's output (``f.csv: ... alerts=N`` or its table)."""
    found = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+\.csv): .*\balerts=(\d+)", text, re.M)}
    if not found:
        found = {m.group(1): int(m.group(2))
                 for m in re.finditer(r"^(\S+\.csv)\s+\d+\s+(\d+)\s+[\d.]+\s+[\d.]+$", text, re.M)}
    return found


def source_counts(source: str, label: str) -> dict[str, int]:
    path, _, key = source.partition("#")
    if not key:
        return counts(Path(path).read_text())
    for run in json.loads(Path(path).read_text())["runs"]:
        if run["label"] == label:
            return {k: int(v) for k, v in run[key]["files"].items()}
    raise SystemExit(f"{path}: no run labelled {label!r}")


def render(path: Path) -> str:
    """The markdown table of docs/anomalies.md from a JSON of this script."""
    doc = json.loads(path.read_text())
    names = doc["meta"].get("columns", {})
    cols = [c for c in COLUMNS if c in doc["runs"][0]]
    head = "| data | symbol-years | " + " | ".join(
        f"{names.get(c, c)} alerts | {names.get(c, c)} per symbol-year" for c in cols) + " |"
    lines = [head, "|---|---:|" + "---:|---:|" * len(cols)]
    for run in doc["runs"]:
        cells = " | ".join(f"{run[c]['alerts']} | {run[c]['per_symbol_year']:.2f}" for c in cols)
        lines.append(f"| {run['label']} | {run['symbol_years']:.1f} | {cells} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--render", type=Path, help="print the markdown table of this JSON and stop")
    p.add_argument("--input")
    p.add_argument("--label")
    p.add_argument("--old", help="the σ detector's counts")
    p.add_argument("--prev", help="optional: an intermediate version's counts")
    p.add_argument("--new", help="this version's counts")
    args = p.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    if not (args.input and args.label and args.old and args.new):
        p.error("--input, --label, --old and --new are required")
    files = price_files(Path(args.input))
    years = {f.name: float((s.ts_ms[-1] - s.ts_ms[0]) / YEAR_MS) for f in files for s in [read_price_csv(f)]}
    out: dict[str, object] = {"label": args.label, "symbols": len(files),
                              "symbol_years": round(sum(years.values()), 3)}
    for name in COLUMNS:
        source = getattr(args, name)
        if source is None:
            continue
        per_file = source_counts(source, args.label)
        total = sum(per_file.values())
        out[name] = {"alerts": total, "per_symbol_year": round(total / sum(years.values()), 2),
                     "files": per_file}
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
