"""Replay sources: price CSV directories (through ``export.prices``) and review CSVs.

Serving must not need pandas, so these parse CSV with the csv module.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterator
from pathlib import Path

from export import prices
from export.errors import DataError
from export.prices import symbol_from_path
from streaming.core.schemas import Feedback, Tick
from streaming.errors import ConfigError

__all__ = ["merged_ticks", "price_files", "read_feedback", "read_price_file", "symbol_from_path"]


def price_files(csv_dir: Path, symbols: list[str] | None = None) -> list[Path]:
    try:
        return prices.price_files(csv_dir, symbols)
    except DataError as exc:
        raise ConfigError(str(exc)) from None


def read_price_file(path: Path) -> Iterator[Tick]:
    """One file's ticks, read by the shared reader (``export.prices``: columns, zones, bad rows)."""
    try:
        series = prices.read_price_csv(path)
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    for ts, close, volume in prices.iter_bars(series):
        yield Tick(series.symbol, ts, close, volume)


def merged_ticks(files: list[Path]) -> Iterator[Tick]:
    """All files merged by timestamp, as one live feed would interleave them."""
    return heapq.merge(*(read_price_file(p) for p in files), key=lambda t: t.ts)


_TEXT_COLS = (("Title", "Review Text"), ("review",), ("text",))


def read_feedback(path: Path, now_ms: int) -> Iterator[Feedback]:
    """Reviews as feedback messages; title and body joined when both exist."""
    if not path.is_file():
        raise ConfigError(f"feedback file {path} does not exist")
    with prices.open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        cols = next((c for c in _TEXT_COLS if all(x in header for x in c)), None)
        if cols is None:
            raise ConfigError(f"{path}: no text column (Title/Review Text, review or text)")
        for i, row in enumerate(reader):
            text = " ".join(row[c].strip() for c in cols if row[c] and row[c].strip())
            if text:
                yield Feedback(id=f"{path.name.split('.')[0]}-{i}", ts=now_ms, text=text[:20_000],
                               channel="review", customer_id=None)
