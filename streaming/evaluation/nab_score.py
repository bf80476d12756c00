"""NAB-style scoring of per-row anomaly scores, with an exact threshold sweep.

Follows the Numenta Anomaly Benchmark's scorer (Lavin & Ahmad 2015; standard profile
A_TP = 1, A_FN = 1, A_FP = 0.11): rows in the probationary period (the first
``min(15 %, 750)`` rows) are not judged; inside a window only the first detection counts,
earning ``A_TP * sigma(x) / sigma(-1)`` with ``x = -(right - i + 1) / width``; a window
without detection costs ``A_FN``; a detection outside every window costs
``A_FP`` weighted by ``sigma`` of its distance past the preceding window
(``|right - i| / (width - 1)``; full cost before the first window). The corpus score is
normalised as NAB does: ``100 * (S - S_null) / (S_perfect - S_null)``.

Why exact: the sweep evaluates every distinct score value as a threshold (event lists
sorted once), so scores that differ in the 9th decimal keep their order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

A_TP, A_FN, A_FP = 1.0, 1.0, 0.11
FloatArray = npt.NDArray[np.float64]
IntPair = tuple[int, int]


def probation(n: int) -> int:
    """NAB's probationary period: 15 % of the file, at most 750 rows."""
    return int(min(math.floor(0.15 * n), 0.15 * 5000))


def scaled_sigmoid(x: float | FloatArray) -> float | FloatArray:
    if isinstance(x, np.ndarray):
        return 2.0 / (1.0 + np.exp(np.minimum(5.0 * x, 700.0))) - 1.0
    return 2.0 / (1.0 + math.exp(min(5.0 * x, 700.0))) - 1.0


_MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0


@dataclass
class FileEvents:
    """One file reduced to threshold events: ``raw(θ) = base + Σ delta[value >= θ]``."""

    values: FloatArray
    deltas: FloatArray
    windows: int

    @property
    def base(self) -> float:
        return -A_FN * self.windows


def file_events(scores: FloatArray, windows: Sequence[IntPair], start: int | None = None) -> FileEvents:
    """Events of one file: ``windows`` are inclusive row ranges; rows before ``start`` are not judged."""
    n = scores.size
    start = probation(n) if start is None else start
    in_window = np.zeros(n, dtype=bool)
    vals: list[FloatArray] = []
    dels: list[FloatArray] = []
    kept = 0
    for i0, i1 in sorted(windows):
        i0, i1 = max(i0, 0), min(i1, n - 1)
        if i1 < i0:
            continue
        in_window[i0:i1 + 1] = True
        if i1 < start:
            continue
        kept += 1
        lo = max(i0, start)
        seg = scores[lo:i1 + 1]
        run = np.maximum.accumulate(seg)
        rec = np.flatnonzero(np.r_[True, run[1:] > run[:-1]])  # first index of each new running max
        width = i1 - i0 + 1
        idx = rec + lo
        tp = A_TP * np.asarray(scaled_sigmoid(-(i1 - idx + 1) / width)) / _MAX_TP
        # Going down in threshold: first missed (-A_FN), then the last record's TP, ... the first's.
        after = np.r_[tp[1:], -A_FN]
        vals.append(seg[rec])
        dels.append(tp - after)
    # False-positive weights by distance past the preceding window (NAB's rule).
    order = sorted((max(a, 0), min(b, n - 1)) for a, b in windows)
    bounds = [(a, b) for a, b in order if b >= a]
    idx_all = np.arange(n)
    prev_right = np.full(n, -1)
    prev_width = np.zeros(n)
    for a, b in bounds:
        prev_right[b + 1:] = b
        prev_width[b + 1:] = b - a + 1
    has_prev = prev_right >= 0
    pos = np.abs(prev_right - idx_all) / np.maximum(prev_width - 1, 1)
    fp_weight = np.where(has_prev, A_FP * np.asarray(scaled_sigmoid(pos)), -A_FP)
    judged = ~in_window
    judged[:start] = False
    vals.append(scores[judged])
    dels.append(fp_weight[judged])
    return FileEvents(np.concatenate(vals), np.concatenate(dels), kept)


@dataclass(frozen=True)
class SweepResult:
    threshold: float
    score: float  # normalised, 100 = perfect, 0 = null detector
    raw: float


def _normalise(raw: float, windows: int) -> float:
    null, perfect = -A_FN * windows, A_TP * windows
    return 100.0 * (raw - null) / (perfect - null) if windows else 0.0


def score_at(events: Sequence[FileEvents], threshold: float) -> SweepResult:
    raw = sum(e.base + float(e.deltas[e.values >= threshold].sum()) for e in events)
    return SweepResult(threshold, _normalise(raw, sum(e.windows for e in events)), raw)


def sweep(events: Sequence[FileEvents]) -> SweepResult:
    """Best NAB score over every distinct threshold (ties: the higher threshold)."""
    windows = sum(e.windows for e in events)
    base = sum(e.base for e in events)
    if not events:
        return SweepResult(math.inf, 0.0, 0.0)
    values = np.concatenate([e.values for e in events])
    deltas = np.concatenate([e.deltas for e in events])
    if values.size == 0:
        return SweepResult(math.inf, _normalise(base, windows), base)
    order = np.argsort(-values, kind="stable")
    v, d = values[order], deltas[order]
    cum = np.cumsum(d)
    last_of_group = np.r_[v[1:] != v[:-1], True]
    cand_raw = base + cum[last_of_group]
    cand_thr = v[last_of_group]
    k = int(np.argmax(cand_raw))
    if cand_raw[k] <= base:
        return SweepResult(math.inf, _normalise(base, windows), base)
    return SweepResult(float(cand_thr[k]), _normalise(float(cand_raw[k]), windows), float(cand_raw[k]))
