"""Price loading and the chronological split: formats, symbols, no leakage across parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data import (
    PriceSeries,
    load_csv_dir,
    load_yfinance,
    split_bounds,
    symbol_from_path,
    window_sets,
    windows,
)
from training.errors import DataError


def test_daily_and_gzipped_intraday_files_load_by_column_name(price_dir: Path) -> None:
    series = load_csv_dir(price_dir)
    assert [s.symbol for s in series] == ["AAA", "BBB", "CCC"]
    assert len(series[0].close) == 600 and len(series[2].close) == 200
    assert np.all(np.diff(series[2].dates.astype("int64")) > 0)
    assert [s.symbol for s in load_csv_dir(price_dir, ["bbb"])] == ["BBB"]


def test_symbols_come_from_file_names() -> None:
    assert symbol_from_path(Path("AAPL.csv")) == "AAPL"
    assert symbol_from_path(Path("NVDA_1min.csv.gz")) == "NVDA"
    assert symbol_from_path(Path("BRK.B.csv")) == "BRK.B"


def test_bad_inputs_fail_with_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such directory"):
        load_csv_dir(tmp_path / "missing")
    (tmp_path / "X.csv").write_text("when,value\n2020-01-01,1\n")
    with pytest.raises(DataError, match="no date/datetime"):
        load_csv_dir(tmp_path)


def test_offline_yfinance_names_the_csv_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yfinance

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no route to host")

    monkeypatch.setattr(yfinance, "download", offline)
    with pytest.raises(DataError, match="--csv-dir") as err:
        load_yfinance(["AAPL"], "2020-01-01", None, tmp_path)
    assert "\n" not in str(err.value)


def test_split_is_chronological_and_windows_never_cross_parts() -> None:
    n, window = 300, 20
    series = PriceSeries("S", np.datetime64("2020-01-01") + np.arange(n), np.arange(1.0, n + 1))
    bounds = split_bounds(n)
    assert bounds == {"train": (0, 210), "val": (210, 255), "test": (255, 300)}
    parts = {p: windows(series, window, p) for p in bounds}
    for part, (lo, hi) in bounds.items():
        ws = parts[part]
        # prices equal their index + 1, so window contents reveal their positions
        assert ws.x.min() >= lo + 1 and ws.y.max() <= hi
        assert len(ws.y) == (hi - lo) - window
    assert parts["train"].dates.max() < parts["val"].dates.min() < parts["test"].dates.min()
    assert sum(len(s.y) for s in window_sets([series], window, "all")) == n - window
