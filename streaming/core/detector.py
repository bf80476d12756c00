"""Residual anomaly detector: one pure class used by the worker, evaluations and tests.

Residuals ``r = log(actual / forecast)`` are standardised, ``z = (r - mean) / sigma``,
against per-series, exponentially weighted statistics. The score is the largest of
four z-equivalent statistics, so one threshold (in σ) governs them all:

* ``|z|``: the point residual (spikes, level shifts, volatility bursts);
* spike-and-revert: two consecutive residuals of opposite sign, ``(|z_prev| + |z|) / √2``.
  It is the matched filter for a one-tick spike (the residual goes +s then -s), so a
  6σ spike is caught on the reverting tick at ~8.5σ even when noise pulls the first
  residual under the threshold; on noise it is just another standard normal;
* a two-sided CUSUM of clipped z (slow drifts, which no single residual shows),
  mapped so that ``cusum == drift_h`` scores exactly the threshold;
* a stuck-feed score: a run of ``k`` unchanged values when the series repeats a value
  with learned rate ``q`` has probability ``q**k``, reported as ``sqrt(2 k ln(1/q))``.

Robustness: a warm-up before any flag; residuals are clipped to ``clip_sigma`` before
they update the statistics, and suspects (``|z| >= learn_limit``) do not update them at
all unless ``rebase`` arrive in a row (a new regime), so one outlier (or a spike that
narrowly missed the threshold) cannot inflate the scale and hide the next.

Re-arming: after a flag the detector stays quiet for ``cooldown`` ticks *and* until the
score has fallen below ``rearm * threshold`` once, so one event (a spike and its
reversal, a stuck run, a burst) is one alert.

Time gaps (optional ``ts``): a tick arriving more than ``gap_factor`` typical steps
after the previous one (a session open after the overnight close, a weekend in hourly
data) is scored against separate gap statistics and never touches the regular ones,
so the daily open does not fire on every symbol at once but an unusual gap still can.
The ``session_ticks`` ticks after a gap (the first hour of 5-minute bars, when markets
are several times as volatile as at midday) each get a learned variance multiplier, so
the open's volatility is expected rather than flagged; none of them flags until
``gap_warmup`` gaps have taught it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    threshold: float = 6.0
    warmup: int = 30
    alpha: float = 0.02  # EW weight of the variance: ~50-tick memory, adapts to volatility regimes
    mean_alpha: float = 0.005  # the mean (forecast bias) moves slower, so a drift is not absorbed
    clip_sigma: float = 3.0  # Huber-style cap on what one residual may add to the statistics
    learn_limit: float = 4.0  # |z| beyond this is not learned at all (a suspect, not a sample)
    cooldown: int = 5
    rearm: float = 0.5  # hysteresis: re-arm only after the score drops below rearm * threshold
    rebase: int = 3  # this many unlearned residuals in a row are a new regime: learn them (clipped)
    min_sigma: float = 1e-5  # log units; below a tick size, keeps flat feeds finite
    pair: bool = True  # spike-and-revert statistic
    drift_k: float = 0.25  # CUSUM allowance in σ per tick (drifts slower than this are ignored)
    drift_h: float = 12.0  # CUSUM decision interval; 0 disables drift detection
    stuck_floor: float = 0.1  # the repeat rate is never assumed rarer than this; 0 disables
    gap_factor: float = 10.0  # a step this many times the typical one is a time gap
    gap_warmup: int = 10  # gaps seen before a gap (or a tick of the session profile) may flag
    session_ticks: int = 12  # ticks after a gap with their own learned variance (the open's U-shape)
    # Severity bands as multiples of the threshold (6σ low, 8σ medium, 10σ high, 15σ critical).
    bands: tuple[float, float, float] = (4 / 3, 5 / 3, 2.5)


@dataclass(slots=True)
class DetectorState:
    """Small enough to live in the Faust table; ``to_list``/``from_list`` round-trip it."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0
    cooldown: int = 0
    latched: int = 0  # 1 after a flag until the score falls below the re-arm level
    prev_z: float = 0.0
    streak: int = 0  # consecutive exceedances
    cusum_pos: float = 0.0
    cusum_neg: float = 0.0
    rho: float = 0.0  # lag-1 autocorrelation of z: a smoothing forecaster makes residuals correlated
    last_value: float | None = None
    flat_run: int = 0
    flat_rate: float = 0.0
    last_ts: float | None = None
    log_step: float | None = None  # EW mean of log(ts step), the series' typical step
    gap_n: int = 0
    gap_mean: float = 0.0
    gap_var: float = 0.0
    since_gap: int = -1  # ticks since the last gap while < session_ticks; -1: no gap yet
    # Variance multipliers of the ticks after a gap (empty until the first gap).
    profile: list[float] = field(default_factory=list)

    def to_list(self) -> list[float | None]:
        """Flat: the scalar fields in declaration order, then the session profile."""
        return [getattr(self, f.name) for f in fields(self)[:-1]] + list(self.profile)

    @classmethod
    def from_list(cls, values: list[float | None] | None) -> DetectorState:
        """Accepts the current layout and the original 4-element ``[n, mean, var, cooldown]``."""
        if not values:
            return cls()
        n_scalars = len(fields(cls)) - 1
        state = cls(*values[:n_scalars])  # type: ignore[arg-type]
        state.profile = [float(v) for v in values[n_scalars:]]  # type: ignore[arg-type]
        for name in ("n", "cooldown", "latched", "streak", "flat_run", "gap_n", "since_gap"):
            setattr(state, name, int(getattr(state, name)))
        return state


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

    def armed(self, state: DetectorState) -> bool:
        """Whether the next tick may flag (warm, out of cooldown, re-armed, profile learned)."""
        cfg = self.config
        unlearned = 0 <= state.since_gap < cfg.session_ticks and state.gap_n < cfg.gap_warmup
        return state.n >= cfg.warmup and state.cooldown == 0 and not state.latched and not unlearned

    def score_one(self, state: DetectorState, residual: float, ts: float | None = None,
                  value: float | None = None) -> Score:
        """Score a residual and update ``state`` in place (causal: uses only the past).

        ``ts`` enables time-gap handling and ``value`` (the observed price) the stuck-feed
        statistic; without them the detector works on residuals alone.
        """
        if self._is_gap(state, ts):
            return self._score_gap(state, residual, value)
        cfg = self.config
        scale = self._session_scale(state)
        z = (residual - state.mean) / (self.sigma(state) * scale) if state.n >= 2 else 0.0
        armed = self.armed(state)
        score = max(abs(z), self._pair(state, z), self._stuck(state, value), self._drift(state, z))
        flagged = armed and score >= cfg.threshold
        self._advance(state, score, flagged)
        exceeds = state.n >= cfg.warmup and abs(z) >= min(cfg.learn_limit, cfg.threshold)
        state.streak = state.streak + 1 if exceeds else 0
        if (not exceeds or state.streak >= cfg.rebase) and state.flat_run < 2:
            self._learn_profile(state, residual)
            clip = cfg.clip_sigma
            lag = min(max(z, -clip), clip) * min(max(state.prev_z, -clip), clip)
            state.rho += max(cfg.mean_alpha, 1.0 / (state.n + 1)) * (lag - state.rho)
            self._learn(state, state.mean + (residual - state.mean) / scale)  # de-seasonalised
        state.prev_z = z
        if 0 <= state.since_gap < cfg.session_ticks:
            state.since_gap += 1
        return Score(residual, score, flagged, self.severity(score) if flagged else None)

    def _session_scale(self, state: DetectorState) -> float:
        """σ multiplier of this tick's position after the last gap (1 outside the profile)."""
        j = state.since_gap
        if not 0 <= j < len(state.profile) or state.gap_n < self.config.gap_warmup:
            return 1.0
        return math.sqrt(max(state.profile[j], 0.25))

    def _learn_profile(self, state: DetectorState, residual: float) -> None:
        """EW mean of squared base-z at each position after a gap: the intraday U-shape."""
        j = state.since_gap
        if not 0 <= j < len(state.profile) or state.n < 2:
            return
        z2 = min(((residual - state.mean) / self.sigma(state)) ** 2, self.config.learn_limit ** 2)
        state.profile[j] += max(0.1, 1.0 / max(state.gap_n, 1)) * (z2 - state.profile[j])

    def _advance(self, state: DetectorState, score: float, flagged: bool) -> None:
        """Cooldown countdown and hysteresis; a flag restarts both and the CUSUM."""
        if state.cooldown > 0:
            state.cooldown -= 1
        if score < self.config.rearm * self.config.threshold:
            state.latched = 0
        if flagged:
            state.cooldown, state.latched = self.config.cooldown, 1
            state.cusum_pos = state.cusum_neg = 0.0

    def _pair(self, state: DetectorState, z: float) -> float:
        if not self.config.pair or state.prev_z * z >= 0:
            return 0.0
        return (abs(state.prev_z) + abs(z)) / _SQRT2

    def _drift(self, state: DetectorState, z: float) -> float:
        cfg = self.config
        if cfg.drift_h <= 0 or state.n < cfg.warmup or state.cooldown > 0:
            return 0.0
        # Correlated residuals make sums wander further than iid ones: scale by the AR(1)
        # long-run standard deviation, sqrt((1 + rho) / (1 - rho)), so noise keeps its false-alarm rate.
        rho = min(max(state.rho, 0.0), 0.9)
        zc = min(max(z, -cfg.clip_sigma), cfg.clip_sigma) / math.sqrt((1 + rho) / (1 - rho))
        state.cusum_pos = max(0.0, state.cusum_pos + zc - cfg.drift_k)
        state.cusum_neg = max(0.0, state.cusum_neg - zc - cfg.drift_k)
        return cfg.threshold * max(state.cusum_pos, state.cusum_neg) / cfg.drift_h

    def _stuck(self, state: DetectorState, value: float | None) -> float:
        cfg = self.config
        if value is None or cfg.stuck_floor <= 0:
            return 0.0
        last, state.last_value = state.last_value, value
        if last is None:
            return 0.0
        same = abs(value - last) <= 1e-12 * max(abs(value), abs(last), 1e-300)
        state.flat_run = state.flat_run + 1 if same else 0
        if state.flat_run <= 1:  # learn how often values repeat, but not from a run itself
            rate_alpha = max(cfg.alpha, 1.0 / (state.n + 1))
            state.flat_rate += rate_alpha * (float(same) - state.flat_rate)
        q = min(max(state.flat_rate, cfg.stuck_floor), 0.999)
        return math.sqrt(2.0 * state.flat_run * -math.log(q))

    def _learn(self, state: DetectorState, residual: float) -> None:
        cfg = self.config
        if state.n >= 5:
            bound = cfg.clip_sigma * self.sigma(state)
            residual = min(max(residual, state.mean - bound), state.mean + bound)
        state.n += 1
        # Equal weights while warming up (fast, unbiased start), then exponential weights.
        alpha = max(cfg.alpha, 1.0 / state.n)
        delta = residual - state.mean
        state.mean += max(cfg.mean_alpha, 1.0 / state.n) * delta
        state.var = (1 - alpha) * (state.var + alpha * delta * delta)

    def _is_gap(self, state: DetectorState, ts: float | None) -> bool:
        """Track the typical step (EW of log steps) and tell whether ``ts`` follows a gap."""
        if ts is None or self.config.gap_factor <= 0:
            return False
        last, state.last_ts = state.last_ts, float(ts)
        if last is None or ts <= last:
            return False
        log_dt = math.log(ts - last)
        if state.log_step is None:
            state.log_step = log_dt
            return False
        if log_dt > state.log_step + math.log(self.config.gap_factor):
            return True
        state.log_step += 0.1 * (log_dt - state.log_step)
        return False

    def _score_gap(self, state: DetectorState, residual: float, value: float | None) -> Score:
        """A gap residual against gap statistics (floored at the regular sigma)."""
        cfg = self.config
        sigma = max(math.sqrt(state.gap_var), self.sigma(state))
        z = (residual - state.gap_mean) / sigma if state.gap_n >= 2 else 0.0
        flagged = state.gap_n >= cfg.gap_warmup and self.armed(state) and abs(z) >= cfg.threshold
        self._advance(state, abs(z), flagged)
        if not flagged:
            bound = cfg.clip_sigma * sigma if state.gap_n >= 5 else math.inf
            clipped = min(max(residual, state.gap_mean - bound), state.gap_mean + bound)
            state.gap_n += 1
            alpha = max(0.1, 1.0 / state.gap_n)  # gaps are rare (one a session): ~10-gap memory
            delta = clipped - state.gap_mean
            state.gap_mean += alpha * delta
            state.gap_var = (1 - alpha) * (state.gap_var + alpha * delta * delta)
        state.prev_z, state.flat_run, state.since_gap = 0.0, 0, 0
        if len(state.profile) != cfg.session_ticks:
            state.profile = [1.0] * cfg.session_ticks
        state.last_value = value if value is not None else state.last_value
        return Score(residual, abs(z), flagged, self.severity(abs(z)) if flagged else None)


def log_residual(actual: float, forecast: float) -> float:
    return math.log(actual / forecast)
