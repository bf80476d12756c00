"""``sentinel evaluate anomalies``: score a CSV tree causally, write scores, report metrics.

Added to the ``evaluate`` sub-commands by ``streaming.cli``; onnxruntime is only
touched when ``--forecaster lstm`` is chosen. One run reports, per corpus (first-level
sub-directory) and overall, side by side, the served detector and the two baselines:
NAB-style standard score with the threshold swept over the group and at the shipped
threshold, the UCR archive's protocol (files with one labelled region) and point-wise
precision/recall against ``labels.json``. Groups ``<corpus>:even`` / ``<corpus>:odd``
split each corpus by file index (sorted names), the tuning and held-out halves.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from streaming.core.detector import DetectorConfig
from streaming.core.series_detector import SeriesConfig
from streaming.errors import ConfigError
from streaming.evaluation.baselines import DETECTORS, PointScorer, make_scorer
from streaming.evaluation.forecasters import FORECASTERS, make_forecaster
from streaming.evaluation.harness import FileResult, defect_line, find_labels, read_labels, run_tree
from streaming.evaluation.nab_score import FileEvents, file_events, score_at, sweep
from streaming.settings import REPO_ROOT
from streaming.sources.synthetic import SyntheticConfig, write_suite

DEFAULT_MODELS_DIR = REPO_ROOT / "models"
# The series detector finds its own one-step change; the worker passes the LSTM residual for prices.
DEFAULT_FORECASTER = "none"
# Shipped thresholds of the baselines: 6σ for both (the rolling z-score's historical default).
SHIPPED = {"windowed_gaussian": 1.0 - 0.5 * math.erfc(6.0 / math.sqrt(2.0)), "rolling_z": 0.5}
UCR_SLACK = 100  # rows either side of the region (the archive's protocol)


def add_anomalies_parser(evaluate_subparsers: Any) -> argparse.ArgumentParser:
    p = evaluate_subparsers.add_parser(
        "anomalies", help="score a tree of timestamp,value CSVs causally; metrics against labels")
    p.add_argument("--input", required=True, metavar="DIR", help="directory tree of CSV files")
    p.add_argument("--labels", metavar="FILE",
                   help="JSON: relative CSV path -> [[start, end], ...] (default: labels.json at INPUT "
                        "or in each of its sub-directories)")
    p.add_argument("--windows", metavar="FILE",
                   help="NAB windows, same format (default: windows_nab.json like --labels; else the labels)")
    p.add_argument("--out", required=True, metavar="DIR", help="scored CSVs, mirroring the input tree")
    p.add_argument("--forecaster", choices=FORECASTERS, default=DEFAULT_FORECASTER,
                   help="residual fed to the detector; none: its own one-step change")
    p.add_argument("--detector", choices=DETECTORS, default="adaptive",
                   help="adaptive: the served detector; zscore: stepped rolling z-score")
    p.add_argument("--threshold", type=float, default=DetectorConfig().threshold,
                   help="shipped threshold on the [0, 1) score")
    p.add_argument("--models-dir", default=str(DEFAULT_MODELS_DIR),
                   help="released models (for --forecaster lstm)")
    p.add_argument("--no-time-gaps", action="store_true", help="do not pass timestamps to the detector")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a DetectorConfig or SeriesConfig field (repeatable), e.g. "
                        "--set components=level+jump --set memory=5000")
    p.add_argument("--synthetic", type=int, metavar="N",
                   help="first write a labelled synthetic suite of N series (+ N noise-only) to --input")
    p.add_argument("--ticks", type=int, default=5000, help="--synthetic: ticks per series")
    p.add_argument("--seed", type=int, default=7, help="--synthetic: random seed")
    p.add_argument("--files", action="store_true", help="also print per-file rows")
    p.add_argument("--json", action="store_true", help="print one JSON report instead of tables")
    p.set_defaults(func=run)
    return p


def _typed(name: str, raw: str, current: Any) -> Any:
    if isinstance(current, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(current, tuple):
        return tuple(x for x in raw.split("+") if x)
    try:
        return type(current)(raw)
    except ValueError as exc:
        raise ConfigError(f"--set {name}={raw!r}: not a {type(current).__name__}") from exc


def detector_config(threshold: float, overrides: list[str]) -> DetectorConfig:
    """``DetectorConfig(threshold=...)`` with ``FIELD=VALUE`` overrides of it or its SeriesConfig."""
    base = DetectorConfig()
    top: dict[str, Any] = {"threshold": threshold}
    inner: dict[str, Any] = {}
    top_names = {f.name for f in fields(DetectorConfig)} - {"series", "bands"}
    inner_names = {f.name for f in fields(SeriesConfig)}
    for item in overrides:
        name, _, raw = item.partition("=")
        if not raw or name not in top_names | inner_names:
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE, FIELD of DetectorConfig/SeriesConfig")
        if name in top_names:
            top[name] = _typed(name, raw, getattr(base, name))
        else:
            inner[name] = _typed(name, raw, getattr(base.series, name))
    return replace(base, series=replace(base.series, **inner), **top)


def _progress(enabled: bool) -> tuple[Any, Callable[[int, int], None] | None]:
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(transient=True, console=Console(stderr=True))
    task = progress.add_task("scoring", total=None)
    return progress, lambda done, total: progress.update(task, completed=done, total=total)


def run(args: argparse.Namespace) -> int:
    input_dir, out_dir = Path(args.input), Path(args.out)
    if args.synthetic:
        write_suite(input_dir, SyntheticConfig(symbols=args.synthetic, ticks_per_symbol=args.ticks,
                                               seed=args.seed), noise_series=args.synthetic)
    if not 0 < args.threshold < 1:
        raise ConfigError("--threshold must be in (0, 1)")
    if not input_dir.is_dir():
        raise ConfigError(f"input directory {input_dir} does not exist")
    labels = read_labels(Path(args.labels)) if args.labels else find_labels(input_dir, "labels.json")
    windows = read_labels(Path(args.windows)) if args.windows else find_labels(input_dir, "windows_nab.json")
    forecaster = make_forecaster(args.forecaster, Path(args.models_dir))
    config = detector_config(args.threshold, args.set)

    def scorer() -> PointScorer:
        return make_scorer(args.detector, config, use_time=not args.no_time_gaps)

    progress, update = _progress(not args.json)
    if progress is not None:
        progress.start()
    try:
        results = run_tree(input_dir, labels, windows, out_dir, forecaster, scorer, update)
    finally:
        if progress is not None:
            progress.stop()
    for r in results:
        line = defect_line(r)
        if line:
            print(line, file=sys.stderr)
    report = build_report(results, labels is not None or windows is not None,
                          {**vars(args), "threshold": config.threshold})
    print(json.dumps(report, indent=1) if args.json else format_report(report, args.files))
    return 0


def _meta() -> dict[str, Any]:
    root = REPO_ROOT
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "streaming"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, False
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "git_commit": commit,
            "streaming_dirty": dirty, "machine": f"{platform.node()} {platform.machine()} "
            f"{os.cpu_count()} cpu, Python {platform.python_version()}"}


def groups_of(results: list[FileResult]) -> dict[str, list[int]]:
    """Group name -> file indices: ALL, each corpus, and their even/odd halves."""
    out: dict[str, list[int]] = {"ALL": [], "ALL:even": [], "ALL:odd": []}
    seen: dict[str, int] = {}
    for i, r in enumerate(results):
        corpus = r.rel.split("/")[0] if "/" in r.rel else "."
        k = seen.get(corpus, 0)
        seen[corpus] = k + 1
        half = "even" if k % 2 == 0 else "odd"
        for g in ("ALL", f"ALL:{half}", corpus, f"{corpus}:{half}"):
            out.setdefault(g, []).append(i)
    if len(seen) == 1:  # one corpus: ALL says it all
        out = {g: v for g, v in out.items() if g.startswith("ALL")}
    return out


def _point_pr(results: list[FileResult], det: str, threshold: float) -> dict[str, float | None]:
    tp = fp = pos = 0
    for r in results:
        s = r.scores[det][r.start:]
        lab = np.zeros(r.accepted, dtype=bool)
        for a, b in r.labels:
            lab[a:b + 1] = True
        lab = lab[r.start:]
        hit = s >= threshold
        tp += int(np.sum(hit & lab))
        fp += int(np.sum(hit & ~lab))
        pos += int(lab.sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / pos if pos else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    return {"precision": precision, "recall": recall, "f1": f1, "flagged_rows": tp + fp}


def _ucr(results: list[FileResult], det: str) -> dict[str, int]:
    solved = n = 0
    for r in results:
        if len(r.labels) != 1 or r.accepted <= r.start:
            continue
        n += 1
        a, b = r.labels[0]
        i = r.start + int(np.argmax(r.scores[det][r.start:]))
        solved += int(a - UCR_SLACK <= i <= b + UCR_SLACK)
    return {"solved": solved, "files": n}


def build_report(results: list[FileResult], labelled: bool, options: dict[str, Any]) -> dict[str, Any]:
    detectors = list(results[0].scores) if results else []
    shipped = {"served": float(options["threshold"]), **SHIPPED}
    events: dict[str, list[FileEvents]] = {
        d: [file_events(r.scores[d], r.windows, r.start) for r in results] for d in detectors}
    groups = groups_of(results)
    table: dict[str, Any] = {}
    for g, idx in groups.items():
        subset = [results[i] for i in idx]
        row: dict[str, Any] = {"files": len(idx), "windows": sum(events[detectors[0]][i].windows for i in idx)
                               if detectors else 0}
        for d in detectors:
            ev = [events[d][i] for i in idx]
            best, fixed = sweep(ev), score_at(ev, shipped[d])
            # No threshold beats silence: JSON has no Infinity, say null.
            swept_at = best.threshold if math.isfinite(best.threshold) else None
            row[d] = {"swept": {"score": best.score, "threshold": swept_at},
                      "shipped": {"score": fixed.score, "threshold": shipped[d]},
                      "points_shipped": _point_pr(subset, d, shipped[d]),
                      "points_swept": _point_pr(subset, d, best.threshold),
                      "ucr_protocol": _ucr(subset, d)}
        table[g] = row
    keep = ("forecaster", "detector", "threshold", "input", "labels", "windows", "set")
    files = [{"file": r.rel, "rows": r.rows, "accepted": r.accepted, "issues": r.issues,
              "constant": r.constant, "windows": len(r.windows), "alerts": r.flags} for r in results]
    return {"meta": _meta(), "options": {k: options.get(k) for k in keep}, "labelled": labelled,
            "groups": table, "files": files}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_table(report: dict[str, Any]) -> list[str]:
    """Markdown table of the report (the doc's tables are rendered with this)."""
    groups = report["groups"]
    if not groups:
        return []
    dets = [k for k in next(iter(groups.values())) if isinstance(next(iter(groups.values()))[k], dict)]
    head = ["group", "files", "windows"]
    for d in dets:
        head += [f"{d} swept", f"{d} @shipped"]
    head += [f"UCR solved {d}" for d in dets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g, row in groups.items():
        cells = [g, str(row["files"]), str(row["windows"])]
        for d in dets:
            cells += [_fmt(row[d]["swept"]["score"]), _fmt(row[d]["shipped"]["score"])]
        cells += [f"{row[d]['ucr_protocol']['solved']}/{row[d]['ucr_protocol']['files']}" for d in dets]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def format_points(report: dict[str, Any]) -> list[str]:
    groups = report["groups"]
    if not groups:
        return []
    dets = [k for k in next(iter(groups.values())) if isinstance(next(iter(groups.values()))[k], dict)]
    head = ["group"] + [f"{d} P/R @shipped" for d in dets] + [f"{d} P/R @swept" for d in dets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g, row in groups.items():
        if ":" in g:
            continue
        cells = [g]
        for key in ("points_shipped", "points_swept"):
            for d in dets:
                p = row[d][key]
                cells.append(f"{_fmt(p['precision'], 3)} / {_fmt(p['recall'], 3)}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def format_report(report: dict[str, Any], files: bool = False) -> str:
    opts = report["options"]
    lines = [f"forecaster={opts['forecaster']} detector={opts['detector']} threshold={opts['threshold']} "
             + " ".join(opts.get("set") or []),
             "NAB-style standard score (100 perfect, 0 = no detections), swept and shipped threshold:"]
    lines += format_table(report)
    lines += ["", "Point-wise precision / recall against labels.json:"]
    lines += format_points(report)
    if files:
        lines += ["", *(f"{f['file']}: rows={f['rows']} accepted={f['accepted']} windows={f['windows']} "
                        f"alerts={f['alerts']}" for f in report["files"])]
    return "\n".join(lines)
