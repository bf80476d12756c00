"""Served detector on the integration test's synthetic price stream, without a broker.

Usage: PYTHONPATH=. python scripts/anomaly_price_check.py
8 symbols x 2,500 ticks with 6σ spikes (the labelled windows) and 8 pure random walks;
naive forecast residuals (log returns) stand in for the LSTM's. Prints spike recall and
alerts on the noise symbols, the integration test's two criteria (>= 0.9, <= 1 per 1,000).
"""

from __future__ import annotations

import math

from streaming.core.detector import DetectorState, ResidualDetector
from streaming.sources.synthetic import SyntheticConfig, generate, iter_noise


def main() -> None:
    cfg = SyntheticConfig(symbols=8, ticks_per_symbol=2500, kinds=("spike",), spike_sigmas=6.0,
                          anomaly_rate=0.01, seed=21)
    ticks, labels = generate(cfg)
    noise = [t for k in range(8) for t in iter_noise(f"NZ{k}", 2500, SyntheticConfig(seed=100 + k))]
    det = ResidualDetector()
    states: dict[str, DetectorState] = {}
    last: dict[str, float] = {}
    flags: dict[str, set[int]] = {}
    for t in ticks + noise:
        state = states.setdefault(t.symbol, DetectorState())
        if t.symbol in last:
            r = det.score_one(state, math.log(t.price / last[t.symbol]), ts=t.ts, value=t.price)
            if r.is_anomaly:
                flags.setdefault(t.symbol, set()).add(t.ts)
        last[t.symbol] = t.price
    hit = total = 0
    for symbol, windows in labels.windows.items():
        for w in windows:
            total += 1
            hit += any(w[0] <= x <= w[1] for x in flags.get(symbol, ()))
    false = sum(len(v) for k, v in flags.items() if k.startswith("NZ"))
    print(f"6σ spikes recalled: {hit}/{total} ({hit / total:.3f}); noise alerts: {false} in {len(noise)} "
          f"ticks ({1000 * false / len(noise):.2f} per 1,000)")


if __name__ == "__main__":
    main()
