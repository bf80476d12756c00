"""Deterministic benchmark inputs: ticks for S symbols, bundles, feedback messages.

Ticks are interleaved round-robin across symbols (as a market feed would be), each
symbol a geometric random walk with strictly increasing ``ts``. Payloads are built
with the producers' own encoders, so the worker sees exactly the contract format.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from streaming.core.schemas import Feedback, Tick
from streaming.sources.producers import feedback_payload, tick_messages, tick_payload

KeyValue = tuple[bytes, bytes]
WINDOW = 60


def symbol_names(count: int, tag: str = "B") -> list[str]:
    """``B0000``, ``B0001``, ...: valid contract symbols, distinct per ``tag``."""
    return [f"{tag}{i:04d}" for i in range(count)]


def random_walks(symbols: int, length: int, seed: int = 3) -> np.ndarray:
    """Prices ``[length, symbols]``: a geometric random walk per symbol from varied levels."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(5.0, 500.0, size=(1, symbols))
    return levels * np.exp(rng.normal(0.0, 0.001, size=(length, symbols)).cumsum(axis=0))


def tick_series(n_ticks: int, symbols: list[str], start_ts: int = 1_700_000_000_000,
                seed: int = 3) -> list[Tick]:
    """``n_ticks`` ticks round-robin over ``symbols``; per symbol ``ts`` steps by 1 ms."""
    per_symbol = -(-n_ticks // len(symbols))
    prices = random_walks(len(symbols), per_symbol, seed).tolist()
    out: list[Tick] = []
    for i in range(n_ticks):
        step, s = divmod(i, len(symbols))
        out.append(Tick(symbols[s], start_ts + step, prices[step][s]))
    return out


def encode_ticks(ticks: list[Tick], bundle: int) -> list[KeyValue]:
    """Single-tick messages (``bundle <= 1``) or bundles of ``bundle`` ticks per symbol."""
    return [(key, build()) for key, _, build in tick_messages(ticks, bundle, keep_ts=True)]


def expected_forecasts(n_ticks: int, n_symbols: int, window: int = WINDOW) -> int:
    """Forecasts a fresh worker emits: one per tick once its symbol's window is full."""
    base, extra = divmod(n_ticks, n_symbols)
    full = max(0, base + 1 - (window - 1)) * extra
    return full + max(0, base - (window - 1)) * (n_symbols - extra)


def feedback_messages(texts: list[str], count: int, tag: str = "bench") -> list[KeyValue]:
    """``count`` feedback messages cycling through ``texts``, ids unique per ``tag``."""
    now = int(time.time() * 1000)
    out: list[KeyValue] = []
    for i in range(count):
        msg = Feedback(id=f"{tag}-{i}", ts=now, text=texts[i % len(texts)], channel="bench")
        out.append((msg.id.encode(), feedback_payload(msg)))
    return out


@dataclass(frozen=True)
class LiveTicks:
    """Ticks for the latency phases: symbols warmed with 60 past ticks, then live ones
    stamped with the wall clock at send time."""

    symbols: list[str]
    prices: np.ndarray  # [steps, symbols]

    @classmethod
    def create(cls, n_symbols: int, steps: int, seed: int = 5) -> LiveTicks:
        return cls(symbol_names(n_symbols, "L"), random_walks(n_symbols, WINDOW + steps, seed))

    def warmup(self, bundle_ts: int) -> list[KeyValue]:
        """One bundle of ``WINDOW`` past ticks per symbol: every window is then full."""
        ticks = [Tick(sym, bundle_ts + i, float(self.prices[i, s]))
                 for s, sym in enumerate(self.symbols) for i in range(WINDOW)]
        return encode_ticks(ticks, WINDOW)

    def live(self, offset: int, count: int) -> Iterator[tuple[bytes, Callable[[], bytes]]]:
        """``count`` single-tick messages from live step ``offset``; ``ts`` set when built."""
        last: dict[str, int] = {}
        n = len(self.symbols)
        for j in range(offset, offset + count):
            step, s = divmod(j, n)
            symbol, price = self.symbols[s], float(self.prices[WINDOW + step, s])
            yield symbol.encode(), _stamper(symbol, price, last)


def _stamper(symbol: str, price: float, last: dict[str, int]) -> Callable[[], bytes]:
    def build() -> bytes:
        ts = max(int(time.time() * 1000), last.get(symbol, 0) + 1)
        last[symbol] = ts
        return tick_payload(Tick(symbol, ts, price))
    return build
