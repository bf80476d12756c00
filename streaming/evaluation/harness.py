"""The anomaly evaluation harness: CSV tree in, scored CSV tree and per-file scores out.

Input is any directory tree of ``timestamp,value`` CSVs (timestamps numeric or ISO
8601) and optional labels, a JSON object mapping each CSV's path relative to the
input directory (or its file stem, as ``sentinel produce synthetic`` writes them) to
``[start, end]`` or ``[start, end, kind]`` windows. A ``labels.json`` (point labels) and
``windows_nab.json`` (NAB windows) are looked up at the root and in each first-level
sub-directory (a *corpus*), whose keys are then relative to it.

Real-data defects never abort a run; they are treated as the worker treats a bad tick:
a row whose timestamp does not parse or is not later than the last accepted one (late,
duplicate) and a row whose value is missing, non-numeric or infinite are ignored and
counted. Every input row still gets an output row (score 0 where it was ignored), so the
output aligns with the input. Each series is scored one accepted row at a time, strictly
causally, by the served detector; the baselines (``streaming.evaluation.windowed``) are computed on
the same accepted rows.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from export.errors import DataError
from export.prices import read_rows
from streaming.errors import ConfigError
from streaming.evaluation.baselines import PointScorer
from streaming.evaluation.forecasters import CausalForecaster, ResidualSpace
from streaming.evaluation.nab_score import probation
from streaming.evaluation.scoring import Window
from streaming.evaluation.windowed import rolling_z, windowed_gaussian

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Benchmark CSVs say timestamp,value; price CSVs (daily Date,Close / intraday datetime,close) work as is.
BASELINES: dict[str, Callable[[FloatArray], FloatArray]] = {
    "windowed_gaussian": windowed_gaussian, "rolling_z": rolling_z}


@dataclass
class Series:
    rel: str  # path relative to the input directory, POSIX separators
    ts_raw: list[str]  # every input row
    ts: FloatArray  # NaN where the timestamp does not parse
    values: FloatArray  # NaN where the value is missing or not a number
    accepted: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    issues: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.accepted.size == 0 and self.ts.size:
            self.accepted, self.issues = accept_rows(self.ts, self.values)


def accept_rows(ts: FloatArray, values: FloatArray) -> tuple[IntArray, dict[str, int]]:
    """Rows the worker would score: parseable, strictly later than the last accepted, finite."""
    keep: list[int] = []
    issues = {"bad_timestamp": 0, "late_or_duplicate": 0, "missing_value": 0}
    last = -math.inf
    for i in range(ts.size):
        t = ts[i]
        if not math.isfinite(t):
            issues["bad_timestamp"] += 1
        elif t <= last:
            issues["late_or_duplicate"] += 1
        elif not math.isfinite(values[i]):
            issues["missing_value"] += 1
        else:
            keep.append(i)
            last = t
    return np.asarray(keep, dtype=np.int64), {k: v for k, v in issues.items() if v}


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


def _ts_or_nan(raw: str) -> float:
    try:
        return parse_ts(raw)
    except ConfigError:
        return math.nan


def read_series(path: Path, root: Path) -> Series:
    """Every row of the file (the shared reader, ``export.prices.read_rows``); a row too short
    for the value column counts as a missing value."""
    try:
        rows = read_rows(path, positional=True)
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    ts = np.array([_ts_or_nan(t) for t in rows.times], dtype=np.float64)
    return Series(path.relative_to(root).as_posix(), rows.times, ts, rows.values)


def find_csvs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ConfigError(f"input directory {root} does not exist")
    return sorted(p for p in root.rglob("*.csv") if p.is_file())


def read_labels(path: Path, prefix: str = "") -> dict[str, list[Window]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read labels {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"labels {path} must map file paths to lists of [start, end] windows")
    out: dict[str, list[Window]] = {}
    for key, windows in raw.items():
        try:
            out[prefix + key] = [Window(parse_ts(w[0]), parse_ts(w[1]), str(w[2]) if len(w) > 2 else "")
                                 for w in windows]
        except (TypeError, IndexError) as exc:
            raise ConfigError(f"labels {path}: bad window list for {key!r}") from exc
    return out


def find_labels(root: Path, name: str) -> dict[str, list[Window]] | None:
    """``name`` at the root, else in each first-level sub-directory (keys prefixed with it)."""
    if (root / name).is_file():
        return read_labels(root / name)
    found: dict[str, list[Window]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if (sub / name).is_file():
            found.update(read_labels(sub / name, prefix=f"{sub.name}/"))
    return found or None


def labels_for(series: Series, labels: dict[str, list[Window]]) -> list[Window]:
    for key in (series.rel, series.rel.removesuffix(".csv"), Path(series.rel).stem):
        if key in labels:
            return labels[key]
    return []


def window_rows(ts: FloatArray, windows: list[Window]) -> list[tuple[int, int]]:
    """Inclusive row ranges (over ``ts``, increasing) of each window; empty ones dropped."""
    out = []
    for w in windows:
        i0, i1 = int(np.searchsorted(ts, w.start, "left")), int(np.searchsorted(ts, w.end, "right")) - 1
        if i1 >= i0:
            out.append((i0, i1))
    return out


@dataclass
class Scored:
    scores: FloatArray  # served detector's [0, 1) score per row given
    flags: npt.NDArray[np.bool_]
    scored_from: int


def score_series(ts: FloatArray, values: FloatArray, forecaster: CausalForecaster,
                 scorer: PointScorer, scored_from: int = 0) -> Scored:
    """Forecast, then step the detector through the (accepted, increasing) rows in order.

    Rows before ``scored_from`` are learned from but reported as 0.
    """
    prefix = values[:max(scored_from, min(values.size, 50))]
    space = ResidualSpace.from_prefix(prefix)
    forecaster.fit(prefix, space)
    with np.errstate(divide="ignore", invalid="ignore"):
        residuals = space.residuals(values, forecaster.forecasts(values, space))
    scores = np.zeros(values.size)
    flags = np.zeros(values.size, dtype=bool)
    for t in range(values.size):
        score, flag = scorer.step(float(residuals[t]), float(ts[t]), float(values[t]))
        if t >= scored_from:
            scores[t], flags[t] = score, flag
    return Scored(scores, flags, scored_from)


def write_scores(path: Path, series: Series, scores: FloatArray) -> None:
    """One output row per input row; full precision so that no two scores tie by rounding."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value", "anomaly_score"])
        for raw, value, score in zip(series.ts_raw, series.values, scores, strict=True):
            out.writerow([raw, repr(float(value)) if np.isfinite(value) else "", repr(float(score))])


@dataclass
class FileResult:
    rel: str
    rows: int
    issues: dict[str, int]
    scores: dict[str, FloatArray]  # detector -> score per accepted row
    labels: list[tuple[int, int]]  # point labels, rows over accepted rows
    windows: list[tuple[int, int]]  # NAB windows, rows over accepted rows
    flags: int  # served detector's alerts (after its cooldown), after the probation
    constant: bool = False

    @property
    def accepted(self) -> int:
        return next(iter(self.scores.values())).size

    @property
    def start(self) -> int:
        return probation(self.accepted)


def run_file(series: Series, labels: list[Window], windows: list[Window], forecaster: CausalForecaster,
             scorer: PointScorer, out_dir: Path | None) -> FileResult:
    acc = series.accepted
    ts, values = series.ts[acc], series.values[acc]
    served = score_series(ts, values, forecaster, scorer)
    scores = {"served": served.scores, **{name: fn(values) for name, fn in BASELINES.items()}}
    if out_dir is not None:
        full = np.zeros(series.values.size)
        full[acc] = served.scores
        write_scores(out_dir / series.rel, series, full)
    start = probation(values.size)
    constant = bool(values.size and np.all(values == values[0]))
    return FileResult(series.rel, series.values.size, dict(series.issues), scores, window_rows(ts, labels),
                      window_rows(ts, windows), int(served.flags[start:].sum()), constant)


def defect_line(result: FileResult) -> str | None:
    """One line for a file with data defects (``None`` when it has none)."""
    parts = [f"{v} {k.replace('_', ' ')}" for k, v in result.issues.items()]
    if result.constant:
        parts.append("constant series")
    if result.accepted < 50:
        parts.append(f"only {result.accepted} usable rows")
    if not parts:
        return None
    ignored = sum(result.issues.values())
    return f"{result.rel}: {ignored} of {result.rows} rows ignored ({', '.join(parts)})"


def run_tree(input_dir: Path, labels: dict[str, list[Window]] | None,
             windows: dict[str, list[Window]] | None, out_dir: Path | None,
             forecaster: CausalForecaster, make_scorer: Callable[[], PointScorer],
             progress: Callable[[int, int], None] | None = None) -> list[FileResult]:
    paths = find_csvs(input_dir)
    if not paths:
        raise ConfigError(f"no .csv files under {input_dir}")
    results = []
    for i, path in enumerate(paths):
        series = read_series(path, input_dir)
        lab = labels_for(series, labels) if labels else []
        win = labels_for(series, windows) if windows else lab
        results.append(run_file(series, lab, win, forecaster, make_scorer(), out_dir))
        if progress:
            progress(i + 1, len(paths))
    return results
