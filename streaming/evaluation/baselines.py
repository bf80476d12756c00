"""Point scorers the harness steps one tick at a time; both return a score in [0, 1).

``AdaptiveScorer`` wraps the served :class:`ResidualDetector` (its ``anomaly_score``);
``RollingZScore`` is the textbook baseline: mean and standard deviation of the last
``window`` residuals, no robustness, its σ score ``s`` mapped to ``s / (s + threshold)``
so that its own threshold sits at 0.5.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from streaming.core.detector import DetectorConfig, DetectorState, ResidualDetector

DETECTORS = ("adaptive", "zscore")


class PointScorer(Protocol):
    threshold: float

    def step(self, residual: float, ts: float, value: float) -> tuple[float, bool]: ...


class AdaptiveScorer:
    def __init__(self, config: DetectorConfig | None = None, use_time: bool = True) -> None:
        self.detector = ResidualDetector(config)
        self.state = DetectorState()
        self.threshold = self.detector.config.threshold
        self.use_time = use_time

    def step(self, residual: float, ts: float, value: float) -> tuple[float, bool]:
        result = self.detector.score_one(self.state, residual, ts=ts if self.use_time else None,
                                         value=value)
        return result.score, result.is_anomaly


class RollingZScore:
    def __init__(self, threshold: float = 6.0, window: int = 100, min_sigma: float = 1e-5) -> None:
        self.sigmas = threshold
        self.threshold = 0.5
        self.min_sigma = min_sigma
        self.past: deque[float] = deque(maxlen=window)

    def step(self, residual: float, ts: float, value: float) -> tuple[float, bool]:
        score = 0.0
        if len(self.past) == self.past.maxlen:
            n = len(self.past)
            mean = sum(self.past) / n
            var = sum((x - mean) ** 2 for x in self.past) / (n - 1)
            score = abs(residual - mean) / max(math.sqrt(var), self.min_sigma)
        if math.isfinite(residual):
            self.past.append(residual)
        return score / (score + self.sigmas), score >= self.sigmas


def make_scorer(name: str, config: DetectorConfig | None = None, use_time: bool = True) -> PointScorer:
    """A fresh scorer (``config`` applies to the served detector)."""
    if name == "adaptive":
        return AdaptiveScorer(config, use_time)
    if name == "zscore":
        return RollingZScore()
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
