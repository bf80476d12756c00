"""Online price source: yfinance through the shared on-disk cache (needs the [train] extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from export.errors import DataError
from export.prices import cached_download
from streaming.core.schemas import Tick
from streaming.errors import ConfigError
from streaming.sources import replay


def yfinance_ticks(tickers: list[str], cache_dir: Path, period: str = "5y") -> Iterator[Tick]:
    """Daily bars per ticker, downloaded once and then read from ``cache_dir``."""
    try:
        files = [cached_download(ticker, cache_dir, period=period) for ticker in tickers]
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    return replay.merged_ticks(files)
