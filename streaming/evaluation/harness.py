"""The anomaly evaluation harness: CSV tree in, scored CSV tree and metrics out.

Input is any directory tree of ``timestamp,value`` CSVs (timestamps numeric or ISO
8601) and optional labels, a JSON object mapping each CSV's path relative to the
input directory (or its file stem, as ``sentinel produce synthetic`` writes them) to
``[start, end]`` or ``[start, end, kind]`` windows. Each series is forecast and scored
one point at a time, strictly causally; the first ``calibration`` fraction of a file
is a probation prefix where forecasters may fit and the detector learns, but nothing
is reported (its ``anomaly_score`` is 0) or judged. Output mirrors the input tree with
``timestamp,value,anomaly_score``, the score being ``s / (s + threshold)`` of the
detector's effective score: a monotone map to [0, 1) with the threshold at 0.5.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streaming.errors import ConfigError
from streaming.evaluation.baselines import PointScorer
from streaming.evaluation.forecasters import CausalForecaster, ResidualSpace
from streaming.evaluation.scoring import Counts, Window, evaluate

FloatArray = npt.NDArray[np.float64]
CALIBRATION = 0.15
# Benchmark CSVs say timestamp,value; price CSVs (daily Date,Close / intraday datetime,close) work as is.
TS_COLUMNS = ("timestamp", "date", "datetime", "time")
VALUE_COLUMNS = ("value", "close")


@dataclass
class Series:
    rel: str  # path relative to the input directory, POSIX separators
    ts_raw: list[str]
    ts: FloatArray
    values: FloatArray  # NaN where the value is missing or not a number


@dataclass
class Scored:
    scores: FloatArray  # effective detector scores, 0 where nothing may be reported
    flags: npt.NDArray[np.bool_]
    scored_from: int


def parse_ts(raw: str | float | int) -> float:
    """Epoch number as is, or an ISO 8601 date/time as epoch seconds (naive means UTC)."""
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"timestamp {raw!r} is neither a number nor ISO 8601") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return math.nan


def _column(header: list[str], names: tuple[str, ...], default: int) -> int:
    return next((header.index(n) for n in names if n in header), default)


def read_series(path: Path, root: Path) -> Series:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ConfigError(f"{path} is empty")
    header = [h.strip().lower() for h in rows[0]]
    if len(header) < 2:
        raise ConfigError(f"{path} needs timestamp,value columns")
    ti = _column(header, TS_COLUMNS, 0)
    vi = _column(header, VALUE_COLUMNS, 1)
    body = [r for r in rows[1:] if len(r) > max(ti, vi)]
    ts = np.array([parse_ts(r[ti]) for r in body], dtype=np.float64)
    if np.any(np.diff(ts) < 0):
        raise ConfigError(f"{path}: timestamps must be in increasing order")
    values = np.array([_number(r[vi]) for r in body], dtype=np.float64)
    return Series(path.relative_to(root).as_posix(), [r[ti] for r in body], ts, values)


def find_csvs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ConfigError(f"input directory {root} does not exist")
    return sorted(p for p in root.rglob("*.csv") if p.is_file())


def read_labels(path: Path) -> dict[str, list[Window]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read labels {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"labels {path} must map file paths to lists of [start, end] windows")
    out: dict[str, list[Window]] = {}
    for key, windows in raw.items():
        try:
            out[key] = [Window(parse_ts(w[0]), parse_ts(w[1]), str(w[2]) if len(w) > 2 else "")
                        for w in windows]
        except (TypeError, IndexError) as exc:
            raise ConfigError(f"labels {path}: bad window list for {key!r}") from exc
    return out


def labels_for(series: Series, labels: dict[str, list[Window]]) -> list[Window]:
    if series.rel in labels:
        return labels[series.rel]
    return labels.get(Path(series.rel).stem, [])


def _ffill(values: FloatArray) -> FloatArray:
    idx = np.where(np.isfinite(values), np.arange(values.size), 0)
    np.maximum.accumulate(idx, out=idx)
    return values[idx]


def score_series(ts: FloatArray, values: FloatArray, forecaster: CausalForecaster,
                 scorer: PointScorer, scored_from: int) -> Scored:
    """Forecast, then step the detector through the points in time order."""
    valid = np.isfinite(values)
    filled = _ffill(values)
    prefix = filled[:scored_from]
    space = ResidualSpace.from_prefix(prefix[np.isfinite(prefix)])
    forecaster.fit(prefix, space)
    residuals = space.residuals(filled, forecaster.forecasts(filled, space))
    scores = np.zeros(values.size)
    flags = np.zeros(values.size, dtype=bool)
    for t in np.flatnonzero(valid & np.isfinite(residuals)):
        score, flag = scorer.step(float(residuals[t]), float(ts[t]), float(values[t]))
        if t >= scored_from:
            scores[t], flags[t] = score, flag
    return Scored(scores, flags, scored_from)


def unit_scores(scores: FloatArray, threshold: float) -> FloatArray:
    return scores / (scores + threshold)


def write_scores(path: Path, series: Series, scores: FloatArray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value", "anomaly_score"])
        for raw, value, score in zip(series.ts_raw, series.values, scores, strict=True):
            out.writerow([raw, repr(float(value)) if np.isfinite(value) else "", f"{score:.6f}"])


@dataclass
class FileResult:
    rel: str
    counts: dict[str, Counts]
    alert_ts: list[str]
    span_days: float


def run_file(series: Series, windows: list[Window], forecaster: CausalForecaster,
             scorer: PointScorer, out_dir: Path | None, calibration: float = CALIBRATION) -> FileResult:
    scored_from = math.ceil(calibration * series.values.size)
    result = score_series(series.ts, series.values, forecaster, scorer, scored_from)
    if out_dir is not None:
        write_scores(out_dir / series.rel, series, unit_scores(result.scores, scorer.threshold))
    counts = evaluate(result.flags, series.ts, windows, scored_from)
    alerts = [series.ts_raw[i] for i in np.flatnonzero(result.flags)]
    return FileResult(series.rel, counts, alerts, _span_days(series, scored_from))


def _span_days(series: Series, scored_from: int) -> float:
    """Scored span in days: ISO dates parse to seconds; epoch numbers > 1e11 are milliseconds."""
    if series.ts.size <= scored_from:
        return 0.0
    span = float(series.ts[-1] - series.ts[scored_from])
    try:
        float(series.ts_raw[0])
    except ValueError:
        return span / 86_400.0
    return span / (86_400_000.0 if series.ts[0] > 1e11 else 86_400.0)


def run_tree(input_dir: Path, labels: dict[str, list[Window]] | None, out_dir: Path | None,
             forecaster: CausalForecaster, make_scorer: Callable[[], PointScorer],
             progress: Callable[[int, int], None] | None = None) -> list[FileResult]:
    paths = find_csvs(input_dir)
    if not paths:
        raise ConfigError(f"no .csv files under {input_dir}")
    results = []
    for i, path in enumerate(paths):
        series = read_series(path, input_dir)
        windows = labels_for(series, labels) if labels else []
        results.append(run_file(series, windows, forecaster, make_scorer(), out_dir))
        if progress:
            progress(i + 1, len(paths))
    return results
