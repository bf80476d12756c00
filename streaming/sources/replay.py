"""Readers for replay sources: price CSV directories and review CSVs (stdlib only).

Serving must not need pandas, so these parse CSV with the csv module.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from streaming.core.schemas import Feedback, Tick
from streaming.errors import ConfigError

EXCHANGE_TZ = ZoneInfo("America/New_York")
_TIME_COLS = ("Date", "datetime", "timestamp", "Datetime")
_PRICE_COLS = ("Close", "close", "value", "price")
_VOLUME_COLS = ("Volume", "volume")


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _pick(header: list[str], names: tuple[str, ...], path: Path) -> str:
    for name in names:
        if name in header:
            return name
    raise ConfigError(f"{path}: no column among {', '.join(names)}")


def _to_ms(text: str) -> int:
    """Naive exchange-local timestamps (the shared data's convention) to epoch ms."""
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=EXCHANGE_TZ if (dt.hour or dt.minute) else UTC)
    return int(dt.timestamp() * 1000)


def symbol_from_path(path: Path) -> str:
    stem = path.name.split(".")[0]
    return stem.split("_")[0].upper()


def price_files(csv_dir: Path, symbols: list[str] | None = None) -> list[Path]:
    if not csv_dir.is_dir():
        raise ConfigError(f"price directory {csv_dir} does not exist")
    files = sorted(p for p in csv_dir.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    if symbols:
        wanted = {s.upper() for s in symbols}
        files = [p for p in files if symbol_from_path(p) in wanted]
    if not files:
        raise ConfigError(f"no price CSV files in {csv_dir}" + (f" for {symbols}" if symbols else ""))
    return files


def read_price_file(path: Path) -> Iterator[Tick]:
    symbol = symbol_from_path(path)
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        tcol, pcol = _pick(header, _TIME_COLS, path), _pick(header, _PRICE_COLS, path)
        vcol = next((c for c in _VOLUME_COLS if c in header), None)
        for row in reader:
            volume = float(row[vcol]) if vcol and row[vcol] else None
            yield Tick(symbol, _to_ms(row[tcol]), float(row[pcol]), volume)


def merged_ticks(files: list[Path]) -> Iterator[Tick]:
    """All files merged by timestamp, as one live feed would interleave them."""
    return heapq.merge(*(read_price_file(p) for p in files), key=lambda t: t.ts)


_TEXT_COLS = (("Title", "Review Text"), ("review",), ("text",))


def read_feedback(path: Path, now_ms: int) -> Iterator[Feedback]:
    """Reviews as feedback messages; title and body joined when both exist."""
    if not path.is_file():
        raise ConfigError(f"feedback file {path} does not exist")
    with _open_text(path) as fh:
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
