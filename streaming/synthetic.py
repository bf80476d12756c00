"""Labelled synthetic price streams: random walks with injected anomalies.

Pure functions (no Kafka): the producer, the evaluation harness and the tests share
them. Each anomaly is labelled with a ``[start_ts, end_ts]`` window.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from streaming.schemas import Tick

ANOMALY_KINDS = ("spike",)


@dataclass(frozen=True)
class SyntheticConfig:
    symbols: int = 10
    ticks_per_symbol: int = 1000
    sigma: float = 0.001  # per-tick log-return volatility
    anomaly_rate: float = 0.005  # probability a tick starts an anomaly (after warm-up)
    spike_sigmas: float = 8.0
    warmup: int = 120  # no anomaly before the window and the detector are warm
    start_ts: int = 1_700_000_000_000
    step_ms: int = 1000
    seed: int = 7
    kinds: tuple[str, ...] = ANOMALY_KINDS


@dataclass
class Labels:
    """``windows[symbol]`` = list of ``[start_ts, end_ts, kind]``."""

    windows: dict[str, list[list[object]]] = field(default_factory=dict)

    def add(self, symbol: str, start: int, end: int, kind: str) -> None:
        self.windows.setdefault(symbol, []).append([start, end, kind])

    def count(self) -> int:
        return sum(len(v) for v in self.windows.values())


def symbol_name(i: int) -> str:
    return f"SYN{i:04d}"


def _series(cfg: SyntheticConfig, symbol: str, rng: random.Random, labels: Labels) -> list[Tick]:
    price = rng.uniform(20.0, 500.0)
    ticks: list[Tick] = []
    spike_left = 0
    for i in range(cfg.ticks_per_symbol):
        ts = cfg.start_ts + i * cfg.step_ms
        price *= math.exp(rng.gauss(0.0, cfg.sigma))
        shown = price
        if spike_left == 0 and i >= cfg.warmup and rng.random() < cfg.anomaly_rate:
            direction = rng.choice((-1.0, 1.0))
            shown = price * math.exp(direction * cfg.spike_sigmas * cfg.sigma)
            labels.add(symbol, ts, ts + cfg.step_ms, "spike")
            spike_left = 3  # keep injected events apart so each is one labelled window
        elif spike_left:
            spike_left -= 1
        ticks.append(Tick(symbol, ts, round(shown, 6), float(rng.randint(1, 1000))))
    return ticks


def generate(cfg: SyntheticConfig) -> tuple[list[Tick], Labels]:
    """All ticks interleaved by time (as a live feed would deliver them) and their labels."""
    rng = random.Random(cfg.seed)
    labels = Labels()
    per_symbol = [_series(cfg, symbol_name(i), rng, labels) for i in range(cfg.symbols)]
    merged = [t for group in zip(*per_symbol, strict=True) for t in group]
    return merged, labels


def iter_noise(symbol: str, n: int, cfg: SyntheticConfig) -> Iterator[Tick]:
    """Pure random walk with no anomaly: for false-positive measurements."""
    rng = random.Random(cfg.seed)
    price = 100.0
    for i in range(n):
        price *= math.exp(rng.gauss(0.0, cfg.sigma))
        yield Tick(symbol, cfg.start_ts + i * cfg.step_ms, price, None)
