"""Price data for training: CSV directories or yfinance (cached), chronological splits, windows.

Splits are per ticker and by time; windows are cut inside one part only, so no
training window sees a validation or test price, and nothing is fitted on later data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from export import prices
from export.preprocessing import sliding_windows
from export.prices import symbol_from_path
from training.errors import DataError

__all__ = ["PriceSeries", "load_csv_dir", "load_yfinance", "read_price_csv", "symbol_from_path"]

logger = logging.getLogger(__name__)

DEFAULT_SPLIT = (0.70, 0.15, 0.15)
PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class PriceSeries:
    """One symbol's closes in time order."""

    symbol: str
    dates: npt.NDArray[np.datetime64]
    close: npt.NDArray[np.float64]


@dataclass(frozen=True)
class WindowSet:
    """Windows of raw prices ``x`` [n, window] and the next price ``y`` [n] of one symbol and part."""

    symbol: str
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    dates: npt.NDArray[np.datetime64]

    @property
    def last(self) -> npt.NDArray[np.float64]:
        return self.x[:, -1]


def read_price_csv(path: Path, symbol: str | None = None) -> PriceSeries:
    """Daily or intraday price CSV through the one shared reader (``export.prices``)."""
    series = prices.read_price_csv(path, symbol)
    if len(series.close) < 2:
        raise DataError(f"{path}: fewer than 2 valid rows with a date and a positive close")
    return PriceSeries(series.symbol, series.dates, series.close)


def load_csv_dir(directory: Path, tickers: Sequence[str] | None = None) -> list[PriceSeries]:
    """Every ``*.csv``/``*.csv.gz`` in ``directory`` (optionally only ``tickers``), sorted by symbol."""
    return [read_price_csv(p) for p in prices.price_files(directory, tickers)]


def load_yfinance(tickers: Sequence[str], start: str | None, end: str | None,
                  cache_dir: Path) -> list[PriceSeries]:
    """Daily adjusted closes from yfinance, cached as CSV so reruns are offline and identical."""
    return [read_price_csv(prices.cached_download(t, cache_dir, start, end), t.upper()) for t in tickers]


def split_bounds(n: int, fractions: Sequence[float] = DEFAULT_SPLIT) -> dict[str, tuple[int, int]]:
    """Index ranges of train/val/test in time order (fractions are normalised to sum to 1)."""
    total = float(sum(fractions))
    cuts = np.round(np.cumsum([0.0, *fractions]) / total * n).astype(int)
    return {part: (int(cuts[i]), int(cuts[i + 1])) for i, part in enumerate(PARTS)}


def windows(series: PriceSeries, window: int, part: str = "all",
            fractions: Sequence[float] = DEFAULT_SPLIT) -> WindowSet:
    """(window, next price) pairs lying entirely inside ``part`` ("all" = the whole series)."""
    lo, hi = (0, len(series.close)) if part == "all" else split_bounds(len(series.close), fractions)[part]
    x, y = sliding_windows(series.close[lo:hi], window)
    dates = series.dates[lo + window:hi] if len(y) else series.dates[:0]
    return WindowSet(series.symbol, x, y, dates)


def window_sets(series: Sequence[PriceSeries], window: int, part: str,
                fractions: Sequence[float] = DEFAULT_SPLIT) -> list[WindowSet]:
    return [windows(s, window, part, fractions) for s in series]


def stack(sets: Sequence[WindowSet]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """All symbols' windows and targets as two arrays (for training on several tickers together)."""
    window = sets[0].x.shape[1] if sets else 0
    x = np.concatenate([s.x for s in sets]) if sets else np.empty((0, window))
    y = np.concatenate([s.y for s in sets]) if sets else np.empty((0,))
    return x, y


def date_range(series: Sequence[PriceSeries]) -> dict[str, str]:
    first = min(s.dates[0] for s in series)
    last = max(s.dates[-1] for s in series)
    return {"start": str(np.datetime_as_string(first, unit="D")),
            "end": str(np.datetime_as_string(last, unit="D"))}
