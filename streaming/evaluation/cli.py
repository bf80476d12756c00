"""``sentinel evaluate anomalies``: score a CSV tree causally, write scores, print metrics.

Added to the ``evaluate`` sub-commands by ``sentinel.cli``; onnxruntime is only
touched when ``--forecaster lstm`` is chosen.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from streaming.core.detector import DetectorConfig
from streaming.errors import ConfigError
from streaming.evaluation.baselines import DETECTORS, PointScorer, make_scorer
from streaming.evaluation.forecasters import FORECASTERS, make_forecaster
from streaming.evaluation.harness import FileResult, read_labels, run_tree
from streaming.evaluation.scoring import Counts
from streaming.settings import REPO_ROOT
from streaming.sources.synthetic import SyntheticConfig, write_suite

DEFAULT_MODELS_DIR = REPO_ROOT / "models"
# Best window score on the synthetic suite (docs/anomalies.md); the worker serves the LSTM.
DEFAULT_FORECASTER = "lstm"


def add_anomalies_parser(evaluate_subparsers: Any) -> argparse.ArgumentParser:
    p = evaluate_subparsers.add_parser(
        "anomalies", help="score a tree of timestamp,value CSVs causally; metrics against labels")
    p.add_argument("--input", required=True, metavar="DIR", help="directory tree of CSV files")
    p.add_argument("--labels", metavar="FILE",
                   help="JSON: relative CSV path -> [[start, end], ...] (default: INPUT/labels.json)")
    p.add_argument("--out", required=True, metavar="DIR", help="scored CSVs, mirroring the input tree")
    p.add_argument("--forecaster", choices=FORECASTERS, default=DEFAULT_FORECASTER)
    p.add_argument("--detector", choices=DETECTORS, default="adaptive",
                   help="adaptive: the served detector; zscore: plain rolling z-score (baseline)")
    p.add_argument("--threshold", type=float, default=DetectorConfig().threshold,
                   help="flag at score >= this (σ)")
    p.add_argument("--models-dir", default=str(DEFAULT_MODELS_DIR),
                   help="released models (for --forecaster lstm)")
    p.add_argument("--no-time-gaps", action="store_true", help="ablation: ignore timestamps in the detector")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a DetectorConfig field (repeatable), e.g. --set pair=false --set drift_h=0")
    p.add_argument("--synthetic", type=int, metavar="N",
                   help="first write a labelled synthetic suite of N series (+ N noise-only) to --input")
    p.add_argument("--ticks", type=int, default=5000, help="--synthetic: ticks per series")
    p.add_argument("--seed", type=int, default=7, help="--synthetic: random seed")
    p.add_argument("--list-alerts", action="store_true", help="print every alert's timestamp")
    p.add_argument("--json", action="store_true", help="print one JSON report instead of tables")
    p.set_defaults(func=run)
    return p


def _labels(args: argparse.Namespace, input_dir: Path) -> dict[str, Any] | None:
    if args.labels:
        return read_labels(Path(args.labels))
    default = input_dir / "labels.json"
    return read_labels(default) if default.is_file() else None


def detector_config(threshold: float, overrides: list[str]) -> DetectorConfig:
    """``DetectorConfig(threshold=...)`` with ``FIELD=VALUE`` overrides, typed like the defaults."""
    defaults = DetectorConfig()
    values: dict[str, Any] = {"threshold": threshold}
    for item in overrides:
        name, _, raw = item.partition("=")
        if not hasattr(defaults, name) or name == "bands" or not raw:
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE with a DetectorConfig field")
        kind = type(getattr(defaults, name))
        try:
            values[name] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
        except ValueError as exc:
            raise ConfigError(f"--set {item!r}: {raw!r} is not a {kind.__name__}") from exc
    return replace(defaults, **values)


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
    if args.threshold <= 0:
        raise ConfigError("--threshold must be > 0")
    labels = _labels(args, input_dir)
    forecaster = make_forecaster(args.forecaster, Path(args.models_dir))

    config = detector_config(args.threshold, args.set)

    def scorer() -> PointScorer:
        return make_scorer(args.detector, config, use_time=not args.no_time_gaps)

    progress, update = _progress(not args.json)
    if progress is not None:
        progress.start()
    try:
        results = run_tree(input_dir, labels, out_dir, forecaster, scorer, update)
    finally:
        if progress is not None:
            progress.stop()
    report = build_report(results, labels is not None, vars(args))
    print(json.dumps(report, indent=1) if args.json else format_report(report, args.list_alerts))
    return 0


def _label_free(result: FileResult) -> dict[str, Any]:
    c = result.counts[""]
    years = result.span_days / 365.25
    return {"ticks": c.ticks, "alerts": c.alerts,
            "alerts_per_1k": 1000.0 * c.alerts / c.ticks if c.ticks else None,
            "alerts_per_year": c.alerts / years if years >= 30 / 365.25 else None}


def build_report(results: list[FileResult], labelled: bool, options: dict[str, Any]) -> dict[str, Any]:
    overall, kinds = Counts(), dict[str, Counts]()
    files = []
    for r in results:
        overall.add(r.counts[""])
        for kind, c in r.counts.items():
            if kind:
                kinds.setdefault(kind, Counts()).add(c)
        entry = {"file": r.rel, **_label_free(r), "alert_ts": r.alert_ts}
        if labelled:
            entry.update(r.counts[""].summary())
        files.append(entry)
    keep = ("forecaster", "detector", "threshold", "input", "labels", "no_time_gaps", "set")
    report: dict[str, Any] = {"options": {k: options.get(k) for k in keep}, "files": files,
                              "overall": overall.summary() if labelled else _overall_free(files)}
    if labelled:
        report["by_kind"] = {k: c.summary() for k, c in sorted(kinds.items())}
    return report


def _overall_free(files: list[dict[str, Any]]) -> dict[str, Any]:
    ticks, alerts = sum(f["ticks"] for f in files), sum(f["alerts"] for f in files)
    rates = [f["alerts_per_year"] for f in files if f["alerts_per_year"] is not None]
    return {"ticks": ticks, "alerts": alerts, "alerts_per_1k": 1000.0 * alerts / ticks if ticks else None,
            "alerts_per_year": sum(rates) / len(rates) if rates else None}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


LABELLED_COLS = (("ticks", 0), ("windows", 0), ("detected", 0), ("false_positives", 0), ("precision", 3),
                 ("recall", 3), ("f1", 3), ("mean_delay", 2), ("fp_per_1k", 3), ("window_score", 1))
FREE_COLS = (("ticks", 0), ("alerts", 0), ("alerts_per_1k", 3), ("alerts_per_year", 2))


def _table(rows: list[tuple[str, dict[str, Any]]], cols: tuple[tuple[str, int], ...]) -> list[str]:
    width = max([len(name) for name, _ in rows] + [8])
    lines = [f"{'file':<{width}} " + " ".join(f"{c:>12}" for c, _ in cols)]
    for name, row in rows:
        lines.append(f"{name:<{width}} " + " ".join(f"{_fmt(row.get(c), d):>12}" for c, d in cols))
    return lines


def format_report(report: dict[str, Any], list_alerts: bool = False) -> str:
    labelled = "by_kind" in report
    cols = LABELLED_COLS if labelled else FREE_COLS
    opts = report["options"]
    lines = [f"forecaster={opts['forecaster']} detector={opts['detector']} threshold={opts['threshold']} "
             + " ".join(opts.get("set") or [])]
    rows = [(f["file"], f) for f in report["files"]] + [("OVERALL", report["overall"])]
    lines += _table(rows, cols)
    if labelled and report["by_kind"]:
        lines += ["", "by anomaly kind:"]
        lines += _table(list(report["by_kind"].items()), (("windows", 0), ("detected", 0), ("recall", 3),
                                                          ("mean_delay", 2), ("window_score", 1)))
    if list_alerts:
        lines += ["", *(f"{f['file']}: {' '.join(f['alert_ts'])}" for f in report["files"] if f["alert_ts"])]
    return "\n".join(lines)
