"""The served anomaly detector: one pure class used by the worker, the harness and tests.

``ResidualDetector.score_one(state, residual, ts, value)`` scores one tick. The score is
:class:`streaming.core.series_detector.SeriesDetector`'s: record ratios of several statistics
of the observed value (level, one-step change or forecast residual, level shift,
volatility, subsequence shape), so it works on prices (the worker passes the LSTM's
residual, which replaces the naive one-step change) and on any other real series. The
score is in ``[0, 1)`` and comparable across series (0.5: as extreme as the most extreme
tick of the last ~``memory`` ticks); a tick is flagged at ``score >= threshold``, after
which the detector stays quiet for ``cooldown`` ticks so one event is one alert.

Why the old σ-based design went: residual z-scores are not comparable across real series
(quantised counts, step-like telemetry, periodic shapes), which is what issue 12 measured.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from streaming.core.series_detector import SeriesConfig, SeriesDetector, SeriesState

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
_LAYOUT = -4.0  # first element of a serialised state of this design (older layouts restart)
_HEAD = 9  # scalars before the per-slot list in a serialised state


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    threshold: float = 0.6  # on the [0, 1) score: 1.5 times the recent record
    cooldown: int = 10  # ticks after a flag that may not flag (the score is still reported)
    # Severity bands as multiples of the threshold's record ratio (low, medium, high, critical).
    bands: tuple[float, float, float] = (1.5, 2.5, 5.0)
    series: SeriesConfig = field(default_factory=SeriesConfig)
    warmup: int | None = None  # overrides ``series.warmup`` (``settings.detector_warmup``)
    # A tick more than ``gap_factor`` typical steps after the previous one opens a new session
    # (the overnight close of 5-minute bars, a weekend in hourly data): see ``score_one``.
    gap_factor: float = 4.0
    gap_min_steps: int = 20  # steps seen before gaps are recognised
    # The first ``open_slots`` ticks of a session have their own residual scale (intraday
    # volatility is U-shaped: the open's moves are 2-3 times midday's); 0 turns it off.
    open_slots: int = 12
    open_min_sessions: int = 5  # sessions seen before the per-slot scale is used


@dataclass(slots=True)
class DetectorState:
    """Small enough for the Faust table; ``to_list``/``from_list`` round-trip it."""

    cooldown: int = 0
    series: SeriesState = field(default_factory=SeriesState)
    last_ts: float = math.nan  # the previous tick's timestamp
    step: float = 0.0  # typical time step (running mean over regular steps)
    steps: int = 0
    since_open: int = -1  # ticks since the last session opened (-1: no session seen)
    sessions: int = 0
    base_abs: float = 0.0  # running mean |residual| after the open slots
    slot_abs: list[float] = field(default_factory=list)  # running mean |residual| per open slot

    @property
    def n(self) -> int:
        return self.series.n

    def copy(self) -> DetectorState:
        """Positional, in field order: ``dataclasses.replace`` cost more than the series copy
        itself, and every tick's state is copied as its batch's undo point (prices.py)."""
        return DetectorState(self.cooldown, self.series.copy(), self.last_ts, self.step, self.steps,
                             self.since_open, self.sessions, self.base_abs, list(self.slot_abs))

    def to_list(self) -> list[float | None]:
        """NaN (no value yet) as None: what the JSON changelog holds, so memory and log agree."""
        return [None if v != v else v for v in self.to_array()]

    def to_array(self) -> array[float]:
        """The flat float64 layout (NaN kept): the worker's binary checkpoint."""
        out = array("d", (_LAYOUT, float(self.cooldown), self.last_ts, self.step, float(self.steps),
                          float(self.since_open), float(self.sessions), self.base_abs,
                          float(len(self.slot_abs))))
        out.extend(self.slot_abs)
        out.extend(self.series.to_array())
        return out

    @classmethod
    def from_list(cls, values: Sequence[float | None] | None) -> DetectorState:
        """From ``to_list`` or ``to_array``; a state of an older detector design starts afresh
        (the detector re-warms in 50 ticks)."""
        if values is None or not len(values) or values[0] != _LAYOUT:
            return cls()
        nums: Sequence[float] = (values if isinstance(values, array)
                                 else [math.nan if v is None else float(v) for v in values])
        k = int(nums[8])
        return cls(int(nums[1]), SeriesState.from_list(nums[_HEAD + k:]), nums[2], nums[3], int(nums[4]),
                   int(nums[5]), int(nums[6]), nums[7], list(nums[_HEAD:_HEAD + k]))


@dataclass(frozen=True, slots=True)
class Score:
    residual: float
    score: float  # in [0, 1), comparable across series
    is_anomaly: bool
    severity: Severity | None
    ratio: float = 0.0  # the record ratio behind ``score`` (score = ratio / (1 + ratio))

    @property
    def anomaly_score(self) -> float:
        return self.score


class ResidualDetector:
    def __init__(self, config: DetectorConfig | None = None) -> None:
        config = config or DetectorConfig()
        if config.warmup is not None and config.warmup != config.series.warmup:
            config = replace(config, series=replace(config.series, warmup=config.warmup))
        if not 0.0 < config.threshold < 1.0:
            raise ValueError(f"threshold {config.threshold} must be in (0, 1), the score's range")
        self.config = config
        self.series = SeriesDetector(config.series)
        t = config.threshold
        self._ratio_threshold = t / (1.0 - t) if t < 1.0 else math.inf

    def severity(self, score: float) -> Severity:
        ratio = (score / (1.0 - score) if score < 1.0 else math.inf) / self._ratio_threshold
        return SEVERITIES[sum(ratio >= b for b in self.config.bands)]

    def armed(self, state: DetectorState) -> bool:
        """Whether the next tick may flag (warm and out of cooldown)."""
        return state.series.n >= self.config.series.warmup and state.cooldown == 0

    def score_one(self, state: DetectorState, residual: float, ts: float | None = None,
                  value: float | None = None) -> Score:
        """Score one tick and update ``state`` (causal: the tick is scored before it is learned).

        ``value`` is the observed value and ``residual`` its forecast residual; a caller
        with residuals only (no value) gets the residual series itself scored. ``ts`` (any
        unit, increasing; late ticks are dropped by the caller) finds session gaps: the first
        tick after one is re-anchored (its move since the close is not a one-step change), so
        the daily open of 5-minute bars does not alert on every symbol at once.
        """
        armed = self.armed(state)
        fed = residual
        opens = self._opens_session(state, ts)
        if opens and value is not None and math.isfinite(value):
            # The move since the last session's close is not a one-step change: re-anchor so
            # the gap is neither scored as a jump nor learned into the jump/residual records.
            # A gap that moves the level beyond its record still scores (``level``).
            state.series.last = value
            fed = math.nan
        elif math.isfinite(residual):
            fed = self._deseasonalise(state, residual)
        if value is None or not math.isfinite(value):
            ratio = self.series.ratio(state.series, residual)
        else:
            ratio = self.series.ratio(state.series, value, fed)
        score = ratio / (1.0 + ratio)
        flagged = armed and score >= self.config.threshold
        if state.cooldown > 0:
            state.cooldown -= 1
        if flagged:
            state.cooldown = self.config.cooldown
        return Score(residual, score, flagged, self.severity(score) if flagged else None, ratio)

    def _opens_session(self, state: DetectorState, ts: float | None) -> bool:
        """Track the typical time step; True for a tick after a gap of ``gap_factor`` steps."""
        if ts is None or not math.isfinite(ts):
            return False
        dt, state.last_ts = ts - state.last_ts, float(ts)
        if not dt > 0.0:  # first tick (NaN), or equal/late timestamps
            return False
        cfg = self.config
        if state.steps >= cfg.gap_min_steps and dt > cfg.gap_factor * state.step:
            if cfg.open_slots > 0:
                state.since_open = 0
                state.sessions += 1
                if len(state.slot_abs) != cfg.open_slots:
                    state.slot_abs = [0.0] * cfg.open_slots
            return True
        state.steps += 1
        state.step += (dt - state.step) / min(state.steps, 200)
        if state.since_open >= 0:
            state.since_open += 1
        return False

    def _deseasonalise(self, state: DetectorState, residual: float) -> float:
        """The residual in units of its own slot's scale, for the first slots of a session.

        Why: a residual 4σ of midday is ordinary at 09:35, when every symbol moves 2-3 times
        as much; without this the open's first half hour carried most price alerts. Each
        slot's mean |residual| (sessions-weighted) is compared with the mean after the open
        slots; before ``open_min_sessions`` sessions, for series without sessions, and for
        sessions no longer than ``open_slots`` ticks (hourly bars: no "rest of the day" to
        compare with) the residual passes unchanged.
        """
        cfg = self.config
        j = state.since_open
        a = abs(residual)
        if cfg.open_slots <= 0 or j < 0 or len(state.slot_abs) != cfg.open_slots:
            return residual
        if j > cfg.open_slots:
            state.base_abs += (a - state.base_abs) * 0.005 if state.base_abs > 0.0 else a
            return residual
        if j == 0:
            return residual
        slot = state.slot_abs[j - 1]
        scale = state.base_abs / slot if slot > 0.0 and state.base_abs > 0.0 else 1.0
        w = max(1.0 / state.sessions, 0.05)
        state.slot_abs[j - 1] = slot + (a - slot) * w if slot > 0.0 else a
        if state.sessions <= cfg.open_min_sessions:
            return residual
        return residual * min(max(scale, 0.25), 4.0)


def log_residual(actual: float, forecast: float) -> float:
    return math.log(actual / forecast)
