"""Residual anomaly detector: one pure class used by the worker, evaluations and tests.

Residuals ``r = log(actual / forecast)`` are scored against per-series, exponentially
weighted mean and variance. Robustness: a warm-up before any flag, residuals are
clipped to ``clip_sigma`` before they update the statistics (so one outlier cannot
inflate the scale and hide the next), flagged points do not update them at all, and
after a flag the detector re-arms only after ``cooldown`` ticks (a spike and its
reversal are one event, not two).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    threshold: float = 6.0
    warmup: int = 30
    alpha: float = 0.02  # EW weight: ~50-tick memory, adapts to volatility regimes
    clip_sigma: float = 4.0
    cooldown: int = 5
    min_sigma: float = 1e-5  # log units; below a tick size, keeps flat feeds finite
    # Severity bands as multiples of the threshold (6σ low, 8σ medium, 10σ high, 15σ critical).
    bands: tuple[float, float, float] = (4 / 3, 5 / 3, 2.5)


@dataclass(slots=True)
class DetectorState:
    """Small enough to live in the Faust table; ``to_list``/``from_list`` round-trip it."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0
    cooldown: int = 0

    def to_list(self) -> list[float]:
        return [self.n, self.mean, self.var, self.cooldown]

    @classmethod
    def from_list(cls, values: list[float] | None) -> DetectorState:
        if not values:
            return cls()
        n, mean, var, cooldown = values
        return cls(int(n), float(mean), float(var), int(cooldown))


@dataclass(frozen=True, slots=True)
class Score:
    residual: float
    score: float
    is_anomaly: bool
    severity: Severity | None


class ResidualDetector:
    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()

    def severity(self, score: float) -> Severity:
        ratio = score / self.config.threshold
        return SEVERITIES[sum(ratio >= b for b in self.config.bands)]

    def sigma(self, state: DetectorState) -> float:
        return max(math.sqrt(state.var), self.config.min_sigma)

    def score_one(self, state: DetectorState, residual: float) -> Score:
        """Score a residual and update ``state`` in place (causal: uses only the past)."""
        cfg = self.config
        score = abs(residual - state.mean) / self.sigma(state) if state.n >= 2 else 0.0
        armed = state.n >= cfg.warmup and state.cooldown == 0
        flagged = armed and score >= cfg.threshold
        if state.cooldown > 0:
            state.cooldown -= 1
        if flagged:
            state.cooldown = cfg.cooldown
        else:
            self._learn(state, residual)
        return Score(residual, score, flagged, self.severity(score) if flagged else None)

    def _learn(self, state: DetectorState, residual: float) -> None:
        cfg = self.config
        if state.n >= 5:
            bound = cfg.clip_sigma * self.sigma(state)
            residual = min(max(residual, state.mean - bound), state.mean + bound)
        state.n += 1
        # Equal weights while warming up (fast, unbiased start), then exponential weights.
        alpha = max(cfg.alpha, 1.0 / state.n)
        delta = residual - state.mean
        state.mean += alpha * delta
        state.var = (1 - alpha) * (state.var + alpha * delta * delta)


def log_residual(actual: float, forecast: float) -> float:
    return math.log(actual / forecast)
