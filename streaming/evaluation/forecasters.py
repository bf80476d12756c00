"""Causal one-step forecasters for the anomaly evaluation harness.

Each maps a whole series to ``f`` with ``f[t]`` computed from ``values[:t]`` only (NaN
where no forecast exists yet), and may ``fit`` on the calibration prefix beforehand.
Forecasts are computed in vectorised passes because each one is a pure function of
its own past; the harness then scores them one point at a time, as the stream does,
and a unit test proves that appending future points never changes an earlier score.

Residual space: a series whose calibration prefix is all positive is treated as a
price (``log`` mode: multiplicative residuals, the LSTM's log-relative normalisation
applies). Otherwise (zero or negative values) it is ``linear``: residuals are
differences scaled by the prefix's mean magnitude, and the LSTM falls back to the
naive forecast, because its normalisation is defined for positive prices only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from streaming.serving.inference import Forecaster
from streaming.settings import REPO_ROOT

FloatArray = npt.NDArray[np.float64]
Mode = Literal["log", "linear"]
FORECASTERS = ("none", "lstm", "naive", "ewma")
_EWMA_GRID = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 1.0)


def residual_mode(prefix: FloatArray) -> Mode:
    finite = prefix[np.isfinite(prefix)]
    return "log" if finite.size and np.all(finite > 0) else "linear"


@dataclass(frozen=True)
class ResidualSpace:
    """How a value and its forecast become a residual (fixed from the prefix)."""

    mode: Mode
    scale: float = 1.0

    @classmethod
    def from_prefix(cls, prefix: FloatArray) -> ResidualSpace:
        mode = residual_mode(prefix)
        level = float(np.nanmean(np.abs(prefix))) if prefix.size else 0.0
        return cls(mode, level if mode == "linear" and level > 0 else 1.0)

    def residuals(self, values: FloatArray, forecasts: FloatArray) -> FloatArray:
        if self.mode == "linear":
            return (values - forecasts) / self.scale
        with np.errstate(divide="ignore", invalid="ignore"):
            # A non-positive value in a positive series is as wrong as a price gets:
            # score it as a 1e-6 fraction of the forecast (a ~-13.8 log residual).
            actual = np.where(values > 0, values, forecasts * 1e-6)
            return np.log(actual / forecasts)


class CausalForecaster(Protocol):
    name: str

    def fit(self, prefix: FloatArray, space: ResidualSpace) -> None: ...

    def forecasts(self, values: FloatArray, space: ResidualSpace) -> FloatArray: ...


def naive_forecasts(values: FloatArray) -> FloatArray:
    out = np.full(values.shape, np.nan)
    out[1:] = values[:-1]
    return out


class NoForecaster:
    """No forecast (NaN residuals): the detector uses the value's own one-step change."""

    name = "none"

    def fit(self, prefix: FloatArray, space: ResidualSpace) -> None:
        return None

    def forecasts(self, values: FloatArray, space: ResidualSpace) -> FloatArray:
        return np.full(values.shape, np.nan)


class NaiveForecaster:
    """Persistence: the next value is the last one (residuals are returns)."""

    name = "naive"

    def fit(self, prefix: FloatArray, space: ResidualSpace) -> None:
        return None

    def forecasts(self, values: FloatArray, space: ResidualSpace) -> FloatArray:
        return naive_forecasts(values)


def ewma_forecasts(values: FloatArray, alpha: float) -> FloatArray:
    out = np.full(values.shape, np.nan)
    level = np.nan
    for t, v in enumerate(values):
        out[t] = level
        level = v if np.isnan(level) else level + alpha * (v - level)
    return out


class EwmaForecaster:
    """Exponential smoothing; ``alpha`` chosen on the prefix (1.0 is persistence)."""

    name = "ewma"

    def __init__(self, alpha: float | None = None) -> None:
        self.alpha = alpha

    def fit(self, prefix: FloatArray, space: ResidualSpace) -> None:
        if self.alpha is not None or prefix.size < 10:
            self.alpha = self.alpha or 0.5
            return
        errors = {a: float(np.nanmean(space.residuals(prefix, ewma_forecasts(prefix, a)) ** 2))
                  for a in _EWMA_GRID}
        self.alpha = min(errors, key=lambda a: errors[a])

    def forecasts(self, values: FloatArray, space: ResidualSpace) -> FloatArray:
        return ewma_forecasts(values, self.alpha or 0.5)


class LstmForecaster:
    """The served ONNX forecast model on each 60-value window (naive where it cannot run)."""

    name = "lstm"

    def __init__(self, model: Forecaster, chunk: int = 2048) -> None:
        self.model = model
        self.chunk = chunk

    def fit(self, prefix: FloatArray, space: ResidualSpace) -> None:
        return None

    def forecasts(self, values: FloatArray, space: ResidualSpace) -> FloatArray:
        out = naive_forecasts(values)
        w = self.model.window
        if space.mode != "log" or values.size <= w:
            return out
        windows = np.lib.stride_tricks.sliding_window_view(values[:-1], w)
        ok = np.all(np.isfinite(windows) & (windows > 0), axis=1)
        rows = np.flatnonzero(ok)
        for i in range(0, rows.size, self.chunk):
            part = rows[i:i + self.chunk]
            out[part + w] = self.model.predict(np.ascontiguousarray(windows[part]))
        return out


def make_forecaster(name: str, models_dir: Path | None = None) -> CausalForecaster:
    if name == "none":
        return NoForecaster()
    if name == "naive":
        return NaiveForecaster()
    if name == "ewma":
        return EwmaForecaster()
    if name == "lstm":
        from export.manifest import FORECAST_MODEL
        from streaming.serving.inference import latest_version_dir, load_forecaster

        root = models_dir or REPO_ROOT / "models"
        return LstmForecaster(load_forecaster(latest_version_dir(root, FORECAST_MODEL)))
    raise ValueError(f"unknown forecaster {name!r}; choose one of {', '.join(FORECASTERS)}")
