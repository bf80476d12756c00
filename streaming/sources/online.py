"""Online price source: yfinance with an on-disk CSV cache (needs the [train] extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from streaming.core.schemas import Tick
from streaming.errors import ConfigError
from streaming.sources import replay


def yfinance_ticks(tickers: list[str], cache_dir: Path, period: str = "5y") -> Iterator[Tick]:
    """Daily closes per ticker, downloaded once and then read from ``cache_dir``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for ticker in tickers:
        path = cache_dir / f"{ticker.upper()}.csv"
        if not path.is_file():
            _download(ticker, path, period)
        files.append(path)
    return replay.merged_ticks(files)


def _download(ticker: str, path: Path, period: str) -> None:
    try:
        import yfinance
    except ImportError:
        raise ConfigError("yfinance is not installed: pip install 'stream-sentinel[train]', "
                          "or replay offline with --csv-dir DIR") from None
    try:
        frame = yfinance.download(ticker, period=period, progress=False, auto_adjust=True)
    except Exception as exc:  # yfinance raises many untyped network errors
        raise ConfigError(f"yfinance download of {ticker} failed ({exc}); offline, use --csv-dir DIR"
                          ) from None
    if frame is None or frame.empty:
        raise ConfigError(f"yfinance returned no data for {ticker} (offline?): use --csv-dir DIR")
    if hasattr(frame.columns, "levels"):
        frame.columns = frame.columns.get_level_values(0)
    frame[["Close", "Volume"]].rename_axis("Date").to_csv(path, date_format="%Y-%m-%d")
