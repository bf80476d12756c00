"""Labelled synthetic price streams: random walks with injected anomalies.

Pure functions (no Kafka): the producer, the evaluation harness and the tests share
them. Each anomaly is labelled with a ``[start_ts, end_ts, kind]`` window covering the
ticks a detector may fairly flag for it. Kinds are the failures that matter for prices:

* ``spike``: one bad print ``spike_sigmas`` σ away, the next tick is back on the walk;
* ``level_shift``: a permanent jump of ``shift_sigmas`` σ;
* ``volatility_burst``: ``burst_ticks`` ticks with volatility times ``burst_factor``;
* ``drift``: ``drift_ticks`` ticks with an extra trend of ``drift_sigmas`` σ per tick;
* ``stuck``: the feed repeats its last price for ``stuck_ticks`` ticks, then catches up.

Events are kept ``spacing`` ticks apart so each is one labelled window and detectors
(and a 60-tick forecast window) recover in between.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from streaming.core.schemas import Tick

ANOMALY_KINDS = ("spike", "level_shift", "volatility_burst", "drift", "stuck")


@dataclass(frozen=True)
class SyntheticConfig:
    symbols: int = 10
    ticks_per_symbol: int = 1000
    sigma: float = 0.001  # per-tick log-return volatility
    anomaly_rate: float = 0.005  # probability a tick starts an anomaly (after warm-up and spacing)
    spike_sigmas: float = 6.0
    shift_sigmas: float = 8.0
    burst_factor: float = 4.0
    burst_ticks: int = 30
    drift_sigmas: float = 0.5
    drift_ticks: int = 80
    stuck_ticks: int = 20
    warmup: int = 120  # no anomaly before the window and the detector are warm
    spacing: int = 60
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


@dataclass
class _Event:
    kind: str
    start: int
    length: int  # ticks inside the labelled window
    sign: float


def _event_length(cfg: SyntheticConfig, kind: str) -> int:
    # A spike's window includes the reverting tick; a stuck window includes the catch-up tick.
    return {"spike": 2, "level_shift": 5, "volatility_burst": cfg.burst_ticks,
            "drift": cfg.drift_ticks, "stuck": cfg.stuck_ticks + 1}[kind]


def _plan(cfg: SyntheticConfig, rng: random.Random) -> list[_Event]:
    """Event schedule for one series: starts, kinds and directions, non-overlapping."""
    events: list[_Event] = []
    free_from = cfg.warmup
    for i in range(cfg.ticks_per_symbol):
        if i < free_from or rng.random() >= cfg.anomaly_rate:
            continue
        kind = rng.choice(cfg.kinds)
        length = _event_length(cfg, kind)
        if i + length >= cfg.ticks_per_symbol:
            break
        events.append(_Event(kind, i, length, rng.choice((-1.0, 1.0))))
        free_from = i + length + cfg.spacing
    return events


def _step(cfg: SyntheticConfig, ev: _Event | None, i: int) -> tuple[float, float]:
    """(volatility multiplier, extra log drift) of tick ``i`` under event ``ev``."""
    if ev is None:
        return 1.0, 0.0
    if ev.kind == "volatility_burst":
        return cfg.burst_factor, 0.0
    if ev.kind == "drift":
        return 1.0, ev.sign * cfg.drift_sigmas * cfg.sigma
    if ev.kind == "level_shift" and i == ev.start:
        return 1.0, ev.sign * cfg.shift_sigmas * cfg.sigma
    return 1.0, 0.0


def _series(cfg: SyntheticConfig, symbol: str, rng: random.Random, labels: Labels) -> list[Tick]:
    price = rng.uniform(20.0, 500.0)
    events = _plan(cfg, rng)
    by_tick = {i: ev for ev in events for i in range(ev.start, ev.start + ev.length)}
    ticks: list[Tick] = []
    frozen = price
    for i in range(cfg.ticks_per_symbol):
        ts = cfg.start_ts + i * cfg.step_ms
        ev = by_tick.get(i)
        vol, drift = _step(cfg, ev, i)
        price *= math.exp(rng.gauss(0.0, cfg.sigma * vol) + drift)
        shown = price
        if ev is not None and ev.kind == "spike" and i == ev.start:
            shown = price * math.exp(ev.sign * cfg.spike_sigmas * cfg.sigma)
        elif ev is not None and ev.kind == "stuck" and i < ev.start + ev.length - 1:
            shown = frozen
        if ev is not None and i == ev.start:
            labels.add(symbol, ts, ts + (ev.length - 1) * cfg.step_ms, ev.kind)
        frozen = shown
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


def write_suite(root: Path, cfg: SyntheticConfig, noise_series: int = 0) -> Path:
    """The labelled suite as a CSV tree: ``labelled/<SYM>.csv``, ``noise/<SYM>.csv`` and
    ``labels.json`` (relative path -> windows), the harness's input format."""
    ticks, labels = generate(cfg)
    by_symbol: dict[str, list[Tick]] = {}
    for t in ticks:
        by_symbol.setdefault(t.symbol, []).append(t)
    for i in range(noise_series):
        symbol = f"NOISE{i:04d}"
        noise_cfg = replace(cfg, seed=cfg.seed + 1 + i)
        by_symbol[symbol] = list(iter_noise(symbol, cfg.ticks_per_symbol, noise_cfg))
    mapping: dict[str, list[list[object]]] = {}
    for symbol, series in by_symbol.items():
        rel = f"{'noise' if symbol.startswith('NOISE') else 'labelled'}/{symbol}.csv"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["timestamp", "value"])
            out.writerows([t.ts, repr(t.price)] for t in series)
        mapping[rel] = labels.windows.get(symbol, [])
    labels_path = root / "labels.json"
    labels_path.write_text(json.dumps(mapping, indent=1, sort_keys=True), encoding="utf-8")
    return labels_path
