"""Micro-benchmark: the served detector's cost per symbol-tick (also part of ``sentinel bench``).

Usage: PYTHONPATH=. python scripts/bench_detector.py [--ticks N] [--symbols K]
"""

from __future__ import annotations

import argparse

from streaming.bench.detector import detector_part


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=20_000)
    ap.add_argument("--symbols", type=int, default=10)
    args = ap.parse_args()
    cost = detector_part(args.ticks, args.symbols)["detector_us_per_tick"]
    print(f"price series: {cost['price']:.2f} us/tick, volume series: {cost['volume']:.2f} us/tick "
          f"({args.symbols} symbols x {args.ticks} ticks)")
    print(f"price without the shape component: {cost['price_without_shape']:.2f} us/tick")


if __name__ == "__main__":
    main()
