"""Render docs/anomalies.md's tables from committed harness JSON (no hand-typed figures).

Usage: PYTHONPATH=. python scripts/anomaly_tables.py [--doc docs/anomalies.md]
Replaces the text between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` markers:
``main`` and ``points`` from docs/results/anomalies-dev.json, ``ablations`` from
docs/results/ablations/*.json (one harness run per variant, its ``--set`` options).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from streaming.evaluation.cli import format_points, format_table

RESULTS = Path("docs/results")
CORPORA = ("ALL", "ALL:even", "ALL:odd", "ms_cloud_monitoring", "nasa_smap_msl", "ucr")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def meta_line(report: dict[str, Any]) -> str:
    m = report["meta"]
    return (f"Run {m['date']}, git commit `{(m['git_commit'] or '?')[:10]}`"
            f"{' (streaming/ modified)' if m.get('streaming_dirty') else ''}, {m['machine']}.")


def ablation_table(paths: list[Path]) -> list[str]:
    head = ["variant (`--set`)", *CORPORA]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path in paths:
        report = _load(path)
        name = " ".join(report["options"].get("set") or []) or "served default"
        cells = [name]
        for g in CORPORA:
            row = report["groups"].get(g)
            cells.append("-" if row is None else f"{row['served']['swept']['score']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(doc: Path) -> None:
    main = _load(RESULTS / "anomalies-dev.json")
    blocks = {"main": [meta_line(main), "", *format_table(main)], "points": format_points(main)}
    abl = sorted((RESULTS / "ablations").glob("*.json"))
    if abl:
        blocks["ablations"] = ablation_table(abl)
    text = doc.read_text(encoding="utf-8")
    for name, lines in blocks.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.S)
        body = "\n".join(lines)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    doc.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--doc", default="docs/anomalies.md")
    render(Path(ap.parse_args().doc))
