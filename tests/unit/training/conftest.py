"""Tiny generated data for training tests: seconds, not minutes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

NEG = ["terrible", "broken", "refund", "awful", "returned"]
POS = ["love", "great", "perfect", "beautiful", "comfy"]
FILLER = ["the", "dress", "fit", "it", "was", "color", "size"]


def _walk(n: int, seed: int, start: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start * np.exp(np.cumsum(rng.normal(0.0005, 0.02, n)))


@pytest.fixture
def price_dir(tmp_path: Path) -> Path:
    """Two daily files (Date,Close,... in yfinance column order) and one gzipped intraday file."""
    d = tmp_path / "prices"
    d.mkdir()
    dates = np.datetime64("2020-01-01") + np.arange(600)
    for i, sym in enumerate(("AAA", "BBB")):
        close = _walk(600, i, 50.0 * (i + 1))
        rows = [f"{dt},{c},{c * 1.01},{c * 0.99},{c},1000" for dt, c in zip(dates, close, strict=True)]
        (d / f"{sym}.csv").write_text("Date,Close,High,Low,Open,Volume\n" + "\n".join(rows) + "\n")
    close = _walk(200, 7, 20.0)
    times = np.datetime64("2024-01-02T09:30") + np.arange(200) * np.timedelta64(1, "m")
    rows = [f"{str(t).replace('T', ' ')},{c},{c},{c},{c},5" for t, c in zip(times, close, strict=True)]
    with gzip.open(d / "CCC_1min.csv.gz", "wt") as fh:
        fh.write("datetime,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return d


def review_rows(n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """(title, body, rating) with a learnable signal: negative words in 1-2 star reviews."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rating = int(rng.choice([1, 2, 3, 4, 5], p=[0.1, 0.1, 0.1, 0.3, 0.4]))
        words = NEG if rating <= 2 else POS
        body = " ".join([*rng.choice(FILLER, 5), *rng.choice(words, 2)])
        rows.append((f"title {i % 7}", body, rating))
    return rows


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv.gz"
    rows = [f'{i},{t},"{b}",{r}' for i, (t, b, r) in enumerate(review_rows(400))]
    lines = [",Title,Review Text,Rating", *rows]
    lines.append("400,,,5")  # empty text: dropped
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
