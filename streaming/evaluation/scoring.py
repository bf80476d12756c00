"""Event-level metrics and a NAB-like window score for alerts against labelled windows.

Only points after the calibration prefix count (the detector may learn there, it is
not judged there); a window that ends inside the prefix is ignored.

* A window ``[i0, i1]`` (ticks whose timestamps fall inside the labelled interval) is
  detected when at least one alert lies in it; its delay is ``first alert - i0`` ticks.
* An alert outside every window is a false positive.
* precision = TP / (TP + FP) with TP = detected windows; recall = TP / windows.
* Window score (after NAB, Lavin & Ahmad 2015, standard profile A_TP = 1, A_FN = 1,
  A_FP = 0.11): a detected window earns ``sigma(x) = 2 / (1 + exp(5 x)) - 1`` with
  ``x = -(i1 + 1 - i) / (i1 + 1 - i0)`` for its first alert ``i`` (x = -1 at the window
  start -> 0.987, falling towards 0 at its end), a missed window costs 1, a false
  positive 0.11. ``score = 100 * (raw - null) / (perfect - null)`` where ``null`` is the
  raw score of no alerts at all (``-windows``) and ``perfect`` an alert on the first
  tick of every window; it is summed over files before normalising, so 100 is perfect,
  0 is as good as staying silent, and negative is worse than silence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

A_TP, A_FN, A_FP = 1.0, 1.0, 0.11


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    kind: str = ""


@dataclass
class Counts:
    """Additive tallies: per file, per kind, or overall."""

    windows: int = 0
    detected: int = 0
    false_pos: int = 0
    alerts: int = 0
    ticks: int = 0  # scored ticks
    quiet_ticks: int = 0  # scored ticks outside every window
    delays: list[int] = field(default_factory=list)
    raw: float = 0.0
    null: float = 0.0
    perfect: float = 0.0

    def add(self, other: Counts) -> None:
        for name in ("windows", "detected", "false_pos", "alerts", "ticks", "quiet_ticks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.delays.extend(other.delays)
        self.raw, self.null, self.perfect = (self.raw + other.raw, self.null + other.null,
                                             self.perfect + other.perfect)

    def summary(self) -> dict[str, float | int | None]:
        tp, fp, n = self.detected, self.false_pos, self.windows
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / n if n else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall and precision + recall > 0 else None)
        span = self.perfect - self.null
        return {"windows": n, "detected": tp, "false_positives": fp, "alerts": self.alerts,
                "ticks": self.ticks, "precision": precision, "recall": recall, "f1": f1,
                "mean_delay": float(np.mean(self.delays)) if self.delays else None,
                "fp_per_1k": 1000.0 * fp / self.quiet_ticks if self.quiet_ticks else None,
                "window_score": 100.0 * (self.raw - self.null) / span if span > 0 else None}


def scaled_sigmoid(x: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def window_indices(ts: npt.NDArray[np.float64], w: Window) -> tuple[int, int]:
    """First and last index whose timestamp lies in the window (i1 < i0 if none)."""
    return int(np.searchsorted(ts, w.start, "left")), int(np.searchsorted(ts, w.end, "right")) - 1


def evaluate(flags: npt.NDArray[np.bool_], ts: npt.NDArray[np.float64], windows: Sequence[Window],
             scored_from: int) -> dict[str, Counts]:
    """Counts for one file: key ``""`` is the file, other keys are window kinds."""
    alert_idx = np.flatnonzero(flags[scored_from:]) + scored_from
    covered = np.zeros(flags.size, dtype=bool)
    out: dict[str, Counts] = {"": Counts()}
    for w in windows:
        i0, i1 = window_indices(ts, w)
        if i1 < i0 or i1 < scored_from:
            continue
        covered[i0:i1 + 1] = True
        hits = alert_idx[(alert_idx >= i0) & (alert_idx <= i1)]
        c = Counts(windows=1, null=-A_FN, perfect=A_TP * scaled_sigmoid(-1.0))
        if hits.size:
            c.detected, c.delays = 1, [int(hits[0] - i0)]
            c.raw = A_TP * scaled_sigmoid(-(i1 + 1 - hits[0]) / (i1 + 1 - i0))
        else:
            c.raw = -A_FN
        out[""].add(c)
        if w.kind:
            out.setdefault(w.kind, Counts()).add(c)
    fp = int(np.sum(~covered[alert_idx]))
    total = out[""]
    total.false_pos, total.alerts, total.raw = fp, int(alert_idx.size), total.raw - A_FP * fp
    total.ticks = max(flags.size - scored_from, 0)
    total.quiet_ticks = int(np.sum(~covered[scored_from:]))
    return out
