"""Price-window normalisation shared by training and serving (numpy only).

Windows are expressed as log-prices relative to the window's last price, times a
fixed scale. This is independent of symbol and price level, so one model serves
every ticker and prices outside the training range (unlike a MinMax scaler fitted
on one ticker's history, which saturates).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NORMALISATION_ID = "log_relative_last_v1"
DEFAULT_WINDOW = 60
# Daily log-returns are ~0.01-0.03; x10 puts window values near unit scale for the LSTM.
DEFAULT_SCALE = 10.0

FloatArray = npt.NDArray[np.float64]


def normalise_windows(prices: npt.ArrayLike, scale: float = DEFAULT_SCALE) -> npt.NDArray[np.float32]:
    """Map price windows ``[batch, window]`` to model input ``[batch, window, 1]``."""
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("price windows must be finite and > 0")
    rel = np.log(p / p[:, -1:]) * scale
    return rel.astype(np.float32)[:, :, None]


def normalise_targets(last_prices: npt.ArrayLike, next_prices: npt.ArrayLike,
                      scale: float = DEFAULT_SCALE) -> npt.NDArray[np.float32]:
    """Training target: the next price in the same relative log space as the window."""
    last = np.asarray(last_prices, dtype=np.float64)
    nxt = np.asarray(next_prices, dtype=np.float64)
    return (np.log(nxt / last) * scale).astype(np.float32).reshape(-1, 1)


def denormalise_forecasts(last_prices: npt.ArrayLike, outputs: npt.ArrayLike,
                          scale: float = DEFAULT_SCALE) -> FloatArray:
    """Inverse of :func:`normalise_targets`: model outputs back to prices."""
    last = np.asarray(last_prices, dtype=np.float64).reshape(-1)
    out = np.asarray(outputs, dtype=np.float64).reshape(-1)
    return last * np.exp(out / scale)


def sliding_windows(series: npt.ArrayLike, window: int) -> tuple[FloatArray, FloatArray]:
    """All (window, next value) pairs of one series, in time order, without copies."""
    s = np.asarray(series, dtype=np.float64)
    if s.size <= window:
        return np.empty((0, window)), np.empty((0,))
    view = np.lib.stride_tricks.sliding_window_view(s[:-1], window)
    return view, s[window:]
