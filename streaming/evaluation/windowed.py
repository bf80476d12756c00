"""Reference detectors the harness reports beside the served one, vectorised.

Both are pure functions of each row's past (causal), computed with numpy over a whole
series because they are baselines, not served code:

* ``windowed_gaussian``: NAB's windowed Gaussian (window 6,400 values, re-estimated every
  100): ``1 - Q(|x - mean| / std)``, the two-sided Gaussian tail of the value;
* ``rolling_z``: the harness's historical baseline, ``|r - mean| / std`` of the last 100
  one-step residuals (log returns for positive series, scaled differences otherwise),
  mapped to [0, 1) as ``s / (s + 6)`` (0.5 at 6σ).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# numpy has no erfc; math's, vectorised (serving installs have no scipy).
_erfc = np.frompyfunc(math.erfc, 1, 1)

FloatArray = npt.NDArray[np.float64]


def windowed_gaussian(x: FloatArray, window: int = 6400, step: int = 100) -> FloatArray:
    n = x.size
    out = np.zeros(n)
    if n < 2:
        return out
    t = np.arange(n)
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    end = np.where(t < window, t, window + ((t - window) // step) * step)
    begin = np.maximum(end - window, 0)
    cnt = (end - begin).astype(np.float64)
    ok = cnt > 0
    safe = np.where(ok, cnt, 1.0)
    mean = (c1[end] - c1[begin]) / safe
    var = np.maximum((c2[end] - c2[begin]) / safe - mean * mean, 0.0)
    std = np.sqrt(var)
    dev = np.abs(x - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), dev / std,
                     np.where(dev > 0, np.inf, 0.0))
    out = 1.0 - 0.5 * np.asarray(_erfc(z / math.sqrt(2.0)), dtype=np.float64)
    out[~ok] = 0.0
    return out


def one_step_residuals(x: FloatArray) -> FloatArray:
    r = np.zeros(x.size)
    if x.size < 2:
        return r
    if np.all(x > 0):
        r[1:] = np.log(x[1:] / x[:-1])
    else:
        scale = float(np.mean(np.abs(x))) or 1.0
        r[1:] = np.diff(x) / scale
    return r


def rolling_z(x: FloatArray, window: int = 100, threshold: float = 6.0,
              min_sigma: float = 1e-5) -> FloatArray:
    r = one_step_residuals(x)
    out = np.zeros(x.size)
    if r.size <= window + 1:
        return out
    past = np.lib.stride_tricks.sliding_window_view(r[1:-1], window)  # residuals 1..n-2
    mean = past.mean(axis=1)
    std = np.maximum(past.std(axis=1, ddof=1), min_sigma)
    s = np.abs(r[window + 1:] - mean) / std
    out[window + 1:] = s / (s + threshold)
    return out
