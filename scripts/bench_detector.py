"""Micro-benchmark: the served detector's cost per symbol-tick, as the worker calls it.

Usage: PYTHONPATH=. python scripts/bench_detector.py [--ticks N] [--symbols K] [--set field=value ...]
Interleaves K symbols (each with its own state) like a worker batch and reports µs per
tick overall and with the shape component (the only numpy step) switched off.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import numpy as np

from streaming.core.detector import DetectorConfig, DetectorState, ResidualDetector, log_residual


def bench(config: DetectorConfig, ticks: int, symbols: int) -> float:
    det = ResidualDetector(config)
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, (symbols, ticks)), axis=1))
    states = [DetectorState() for _ in range(symbols)]
    rows = [[float(v) for v in row] for row in prices]
    start = time.perf_counter()
    for t in range(1, ticks):
        for k in range(symbols):
            price, prev = rows[k][t], rows[k][t - 1]
            det.score_one(states[k], log_residual(price, prev), ts=float(t), value=price)
    return 1e6 * (time.perf_counter() - start) / ((ticks - 1) * symbols)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=20_000)
    ap.add_argument("--symbols", type=int, default=10)
    args = ap.parse_args()
    base = DetectorConfig()
    full = bench(base, args.ticks, args.symbols)
    comps = tuple(c for c in base.series.components if c != "shape")
    light = bench(replace(base, series=replace(base.series, components=comps)), args.ticks, args.symbols)
    print(f"served detector: {full:.2f} us/tick ({args.symbols} symbols x {args.ticks} ticks)")
    print(f"without the shape component: {light:.2f} us/tick")
    print(f"shape component amortised: {full - light:.2f} us/tick "
          f"(one search every {base.series.shape_dec * base.series.shape_every} ticks)")
    assert math.isfinite(full)


if __name__ == "__main__":
    main()
