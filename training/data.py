"""Price data for training: CSV directories or yfinance (cached), chronological splits, windows.

Splits are per ticker and by time; windows are cut inside one part only, so no
training window sees a validation or test price, and nothing is fitted on later data.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from export.preprocessing import sliding_windows
from training.errors import DataError

logger = logging.getLogger(__name__)

DEFAULT_SPLIT = (0.70, 0.15, 0.15)
PARTS = ("train", "val", "test")
_DATE_COLUMNS = ("date", "datetime", "timestamp", "time")
_CLOSE_COLUMNS = ("close", "adj close", "adj_close", "price")
_SYMBOL = re.compile(r"^([A-Za-z0-9.^=-]+?)(?:_[^.]*)?\.csv(?:\.gz)?$")


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


def _pick(columns: Sequence[str], wanted: Sequence[str], path: Path) -> str:
    lower = {c.strip().lower(): c for c in columns}
    for name in wanted:
        if name in lower:
            return lower[name]
    raise DataError(f"{path}: no {'/'.join(wanted)} column (have {', '.join(map(str, columns))})")


def symbol_from_path(path: Path) -> str:
    """``AAPL.csv`` -> AAPL, ``NVDA_1min.csv.gz`` -> NVDA."""
    match = _SYMBOL.match(path.name)
    return (match.group(1) if match else path.name.split(".")[0]).upper()


def read_price_csv(path: Path, symbol: str | None = None) -> PriceSeries:
    """Daily (Date,Close,...) or intraday (datetime,close,...) CSV, plain or gzipped; columns by name."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    date_col = _pick(frame.columns, _DATE_COLUMNS, path)
    close_col = _pick(frame.columns, _CLOSE_COLUMNS, path)
    dates = pd.to_datetime(frame[date_col], errors="coerce", utc=False)
    close = pd.to_numeric(frame[close_col], errors="coerce")
    ok = dates.notna() & close.notna() & (close > 0)
    if int(ok.sum()) < 2:
        raise DataError(f"{path}: fewer than 2 valid rows with a date and a positive close")
    if not ok.all():
        logger.warning("path=%s dropped=%d rows without a date or a positive close", path, int((~ok).sum()))
    order = np.argsort(dates[ok].to_numpy(), kind="stable")
    return PriceSeries(symbol or symbol_from_path(path), dates[ok].to_numpy()[order],
                       close[ok].to_numpy(dtype=np.float64)[order])


def load_csv_dir(directory: Path, tickers: Sequence[str] | None = None) -> list[PriceSeries]:
    """Every ``*.csv``/``*.csv.gz`` in ``directory`` (optionally only ``tickers``), sorted by symbol."""
    if not directory.is_dir():
        raise DataError(f"no such directory: {directory}")
    files = sorted(p for p in directory.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    wanted = {t.upper() for t in tickers} if tickers else None
    series = [read_price_csv(p) for p in files if wanted is None or symbol_from_path(p) in wanted]
    if not series:
        raise DataError(f"no price CSVs{' for ' + ','.join(sorted(wanted)) if wanted else ''} in {directory}")
    return series


def load_yfinance(tickers: Sequence[str], start: str | None, end: str | None,
                  cache_dir: Path) -> list[PriceSeries]:
    """Daily adjusted closes from yfinance, cached as CSV so reruns are offline and identical."""
    series = []
    for ticker in tickers:
        path = cache_dir / f"{ticker.upper()}_{start or 'min'}_{end or 'max'}.csv"
        if not path.is_file():
            _download(ticker, start, end, path)
        series.append(read_price_csv(path, ticker.upper()))
    return series


def _download(ticker: str, start: str | None, end: str | None, path: Path) -> None:
    import yfinance as yf

    hint = "no network? pass --csv-dir DIR with Date,Close CSVs (e.g. ../shared/data/prices/daily)"
    # yfinance logs every failed request and pandas deprecations: our one-line error says it all.
    logging.getLogger("yfinance").setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = yf.download(ticker, start=start, end=end, period=None if start else "10y",
                                auto_adjust=True, progress=False, threads=False)
    except Exception as exc:  # yfinance wraps network errors inconsistently
        raise DataError(f"yfinance download of {ticker} failed ({type(exc).__name__}): {hint}") from exc
    if frame is None or frame.empty:
        raise DataError(f"yfinance returned no data for {ticker}: {hint}")
    if hasattr(frame.columns, "levels"):  # recent yfinance returns (field, ticker) columns
        frame.columns = frame.columns.get_level_values(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[["Close"]].rename_axis("Date").to_csv(path)


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
