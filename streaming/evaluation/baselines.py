"""Point scorers the harness steps one residual at a time.

``AdaptiveScorer`` wraps the production :class:`ResidualDetector`; ``RollingZScore``
is the textbook baseline we compare it with: mean and standard deviation of the last
``window`` residuals (returns, with the naive forecaster), no robustness, no re-arming.
Both return an *effective* score, 0 while the detector may not flag (warm-up,
cooldown), so that ``score >= threshold`` holds exactly when the point is flagged.
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
        armed = self.detector.armed(self.state)
        result = self.detector.score_one(self.state, residual, ts=ts if self.use_time else None,
                                         value=value)
        if result.is_anomaly:
            return result.score, True
        # Not flagged: keep the effective score strictly under the threshold.
        below = math.nextafter(self.threshold, 0.0)
        return (min(result.score, below) if armed else 0.0), False


class RollingZScore:
    def __init__(self, threshold: float = 6.0, window: int = 100, min_sigma: float = 1e-5) -> None:
        self.threshold = threshold
        self.min_sigma = min_sigma
        self.past: deque[float] = deque(maxlen=window)

    def step(self, residual: float, ts: float, value: float) -> tuple[float, bool]:
        score = 0.0
        if len(self.past) == self.past.maxlen:
            n = len(self.past)
            mean = sum(self.past) / n
            var = sum((x - mean) ** 2 for x in self.past) / (n - 1)
            score = abs(residual - mean) / max(math.sqrt(var), self.min_sigma)
        self.past.append(residual)
        return score, score >= self.threshold


def make_scorer(name: str, config: DetectorConfig | float, use_time: bool = True) -> PointScorer:
    """A fresh scorer; ``config`` may be just the threshold."""
    cfg = config if isinstance(config, DetectorConfig) else DetectorConfig(threshold=config)
    if name == "adaptive":
        return AdaptiveScorer(cfg, use_time)
    if name == "zscore":
        return RollingZScore(cfg.threshold, min_sigma=cfg.min_sigma)
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
