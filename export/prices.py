"""Price CSVs and the yfinance cache: the one reader used by replay, training and evaluation.

Standard library and numpy only, so serving (replay) reads prices exactly as training does.

* Columns are found by name, case-insensitively: time ``date|datetime|timestamp|time``,
  price ``close|adj close|adj_close|price|value``, optional ``volume``. Plain or ``.gz``.
* **Time-zone rule**: a timestamp with a zone is taken as given; a naive timestamp with a
  time of day is exchange-local (America/New_York, the shared data's convention); a bare
  date (daily bars) is midnight UTC. Everything becomes epoch milliseconds.
* Rows without a parseable time or a positive, finite price are skipped and counted; rows
  are returned in time order (a stable sort keeps equal timestamps in file order).
* ``read_rows`` is the same reader without dropping anything, for the anomaly harness,
  which keeps every row of a labelled series and reads naive times as UTC (its corpora's
  convention, where prices use the exchange's).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from export.errors import DataError

logger = logging.getLogger(__name__)
EXCHANGE_TZ = ZoneInfo("America/New_York")
TIME_COLUMNS = ("date", "datetime", "timestamp", "time")
PRICE_COLUMNS = ("close", "adj close", "adj_close", "price", "value")
VOLUME_COLUMNS = ("volume",)
_SYMBOL = re.compile(r"^([A-Za-z0-9.^=-]+?)(?:_[^.]*)?\.csv(?:\.gz)?$")


@dataclass(frozen=True)
class PriceSeries:
    """One symbol's bars in time order; ``volume`` is NaN where the file has none."""

    symbol: str
    ts_ms: npt.NDArray[np.int64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    skipped: int = 0

    @property
    def dates(self) -> npt.NDArray[np.datetime64]:
        return self.ts_ms.astype("datetime64[ms]")


def open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return path.open(encoding="utf-8", errors="replace", newline="")  # a bad byte spoils one field


def symbol_from_path(path: Path) -> str:
    """``AAPL.csv`` -> AAPL, ``NVDA_1min.csv.gz`` -> NVDA."""
    match = _SYMBOL.match(path.name)
    return (match.group(1) if match else path.name.split(".")[0]).upper()


def to_epoch_ms(text: str) -> int:
    """One timestamp to epoch ms under the module's time-zone rule; ValueError if unparseable."""
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=EXCHANGE_TZ if (dt.hour or dt.minute or dt.second) else UTC)
    return int(dt.timestamp() * 1000)


def price_files(directory: Path, symbols: Sequence[str] | None = None) -> list[Path]:
    """Every ``*.csv``/``*.csv.gz`` in ``directory`` (optionally only ``symbols``), sorted by name."""
    if not directory.is_dir():
        raise DataError(f"no such directory: {directory} (the price directory does not exist)")
    files = sorted(p for p in directory.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    if symbols:
        wanted = {s.upper() for s in symbols}
        files = [p for p in files if symbol_from_path(p) in wanted]
    if not files:
        raise DataError(f"no price CSV files in {directory}" + (f" for {list(symbols)}" if symbols else ""))
    return files


def _pick(header: Sequence[str], wanted: Sequence[str], path: Path, required: bool = True) -> str | None:
    lower = {c.strip().lower(): c for c in header}
    for name in wanted:
        if name in lower:
            return lower[name]
    if required:
        raise DataError(f"{path}: no {'/'.join(wanted)} column (have {', '.join(header)})")
    return None


def _number(text: str | None) -> float:
    try:
        v = float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


@dataclass(frozen=True)
class Rows:
    """Every data row of a file, in file order: raw time text, value (NaN if missing or not a number)."""

    times: list[str]
    values: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]


def read_rows(path: Path, positional: bool = False) -> Rows:
    """The file's rows, none dropped (the anomaly harness writes a score for every input row).

    Columns by name (``TIME_COLUMNS``, ``PRICE_COLUMNS``, ``VOLUME_COLUMNS``); with
    ``positional`` a file without those names is read as ``time,value`` by position.
    Interpreting the time text is the caller's: ``to_epoch_ms`` for prices.
    """
    times: list[str] = []
    values: list[float] = []
    volume: list[float] = []
    try:
        with open_text(path) as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if positional and len(header) < 2:
                raise DataError(f"{path} needs timestamp,value columns")
            tcol, pcol = (_pick(header, names, path, required=not positional)
                          for names in (TIME_COLUMNS, PRICE_COLUMNS))
            vcol = _pick(header, VOLUME_COLUMNS, path, required=False)
            ti = header.index(tcol) if tcol else 0
            pi = header.index(pcol) if pcol else 1
            vi = header.index(vcol) if vcol else -1
            for row in reader:
                if not row:
                    continue
                times.append(row[ti] if len(row) > ti else "")
                values.append(_number(row[pi]) if len(row) > pi else math.nan)
                volume.append(_number(row[vi]) if 0 <= vi < len(row) else math.nan)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    return Rows(times, np.asarray(values, dtype=np.float64), np.asarray(volume, dtype=np.float64))


def read_price_csv(path: Path, symbol: str | None = None) -> PriceSeries:
    """The whole file as arrays, time-ordered; bad rows skipped and counted (a warning line)."""
    rows = read_rows(path)
    ts: list[int] = []
    keep: list[int] = []
    for i, (text, price) in enumerate(zip(rows.times, rows.values.tolist(), strict=True)):
        try:
            when = to_epoch_ms(text)
        except ValueError:
            continue
        if price > 0 and math.isfinite(price):
            ts.append(when)
            keep.append(i)
    skipped = len(rows.times) - len(keep)
    close = rows.values[keep].tolist()
    volume = rows.volume[keep].tolist()
    if skipped:
        logger.warning("path=%s skipped=%d rows without a time or a positive price", path, skipped)
    order = np.argsort(np.asarray(ts, dtype=np.int64), kind="stable")
    return PriceSeries(symbol or symbol_from_path(path), np.asarray(ts, dtype=np.int64)[order],
                       np.asarray(close, dtype=np.float64)[order],
                       np.asarray(volume, dtype=np.float64)[order], skipped)


def iter_bars(series: PriceSeries) -> Iterator[tuple[int, float, float | None]]:
    """``(ts_ms, close, volume or None)`` per bar, for replay."""
    for ts, close, vol in zip(series.ts_ms.tolist(), series.close.tolist(), series.volume.tolist(),
                              strict=True):
        yield ts, close, (None if math.isnan(vol) else vol)


def cached_download(ticker: str, cache_dir: Path, start: str | None = None, end: str | None = None,
                    period: str = "10y") -> Path:
    """Daily adjusted bars from yfinance, written once as ``Date,Close,Volume`` CSV and reused.

    Reruns are offline and identical; yfinance (the ``[train]`` extra) is imported only for
    a download, and any failure is one ``DataError`` line that points at the offline path.
    """
    path = cache_dir / f"{ticker.upper()}_{start or period}_{end or 'latest'}.csv"
    if path.is_file():
        return path
    hint = "no network? replay or train offline with --csv-dir DIR (e.g. ../shared/data/prices/daily)"
    try:
        import yfinance as yf
    except ImportError:
        raise DataError(f"yfinance is not installed (pip install 'stream-sentinel[train]'): {hint}") from None
    logging.getLogger("yfinance").setLevel(logging.CRITICAL)  # our one line says it all
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = yf.download(ticker, start=start, end=end, period=None if start else period,
                                auto_adjust=True, progress=False, threads=False)
    except Exception as exc:  # yfinance wraps network errors inconsistently
        raise DataError(f"yfinance download of {ticker} failed ({type(exc).__name__}): {hint}") from exc
    if frame is None or frame.empty:
        raise DataError(f"yfinance returned no data for {ticker}: {hint}")
    if hasattr(frame.columns, "levels"):  # recent yfinance returns (field, ticker) columns
        frame.columns = frame.columns.get_level_values(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in ("Close", "Volume") if c in frame.columns]
    frame[columns].rename_axis("Date").to_csv(path, date_format="%Y-%m-%d")
    return path
