"""The served detector's cost per symbol-tick, called as the worker calls it.

K symbols, each with its own state, interleaved like a worker batch: the price series
with the forecast residual (here the one-step log change stands in for the LSTM's), and
the volume series alone. The bar is 20 µs per series per tick (issue: cheap in the worker).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from streaming.core.detector import DetectorConfig, DetectorState, ResidualDetector, log_residual


def cost_us(config: DetectorConfig, ticks: int, symbols: int, series: str = "price") -> float:
    det = ResidualDetector(config)
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, (symbols, ticks)), axis=1))
    volumes = np.log1p(np.round(1e6 * np.exp(rng.normal(0, 0.3, (symbols, ticks)))))
    rows = [[float(v) for v in row] for row in (prices if series == "price" else volumes)]
    states = [DetectorState() for _ in range(symbols)]
    start = time.perf_counter()
    for t in range(1, ticks):
        for k in range(symbols):
            value = rows[k][t]
            residual = log_residual(value, rows[k][t - 1]) if series == "price" else math.nan
            det.score_one(states[k], residual, ts=float(t), value=value)
    return 1e6 * (time.perf_counter() - start) / ((ticks - 1) * symbols)


def detector_part(ticks: int, symbols: int) -> dict[str, Any]:
    base = DetectorConfig()
    without_shape = replace(base, series=replace(
        base.series, components=tuple(c for c in base.series.components if c != "shape")))
    price = cost_us(base, ticks, symbols, "price")
    return {"detector_us_per_tick": {
        "price": price, "volume": cost_us(base, ticks, symbols, "volume"),
        "price_without_shape": cost_us(without_shape, ticks, symbols, "price"),
        "ticks": ticks, "symbols": symbols}}
