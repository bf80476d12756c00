"""The one price-CSV reader: columns by name, .gz, the time-zone rule, bad rows counted."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from export.errors import DataError
from export.prices import price_files, read_price_csv, symbol_from_path, to_epoch_ms


def test_time_zone_rule() -> None:
    # A bare date is midnight UTC; a naive time of day is New York time (EST in January).
    assert to_epoch_ms("2024-01-02") == int(datetime(2024, 1, 2, tzinfo=UTC).timestamp() * 1000)
    open_utc = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert to_epoch_ms("2024-01-02 09:30:00") == int(open_utc.timestamp() * 1000)
    assert to_epoch_ms("2024-07-02 09:30:00+00:00") == int(
        datetime(2024, 7, 2, 9, 30, tzinfo=UTC).timestamp() * 1000)


def test_columns_by_name_gz_sorted_and_bad_rows_skipped(tmp_path: Path) -> None:
    path = tmp_path / "abc_5min.csv.gz"
    rows = ["Volume,CLOSE,Datetime", "10,101.5,2024-01-02 09:35:00", "12,abc,2024-01-02 09:40:00",
            "9,100.0,2024-01-02 09:30:00", "7,-1,2024-01-02 09:45:00", ",102.0,2024-01-02 09:50:00",
            "5,103.0,not-a-time"]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    series = read_price_csv(path)
    assert series.symbol == "ABC"
    assert series.close.tolist() == [100.0, 101.5, 102.0]
    assert np.all(np.diff(series.ts_ms) > 0)
    assert series.volume[:2].tolist() == [9.0, 10.0] and np.isnan(series.volume[2])
    assert series.skipped == 3


def test_missing_columns_and_directories_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "X.csv").write_text("when,amount\n2020-01-01,1\n")
    with pytest.raises(DataError, match="no date/datetime/timestamp/time column"):
        read_price_csv(tmp_path / "X.csv")
    with pytest.raises(DataError, match="no such directory"):
        price_files(tmp_path / "missing")
    assert [symbol_from_path(p) for p in price_files(tmp_path)] == ["X"]


def test_read_rows_keeps_every_row_for_the_harness(tmp_path: Path) -> None:
    from export.prices import read_rows

    path = tmp_path / "s.csv"
    path.write_bytes(b"timestamp,value\n2020-01-01 00:00:00,1.5\n2020-01-01 00:01:00,abc\n"
                     b"bad\n2020-01-01 00:03:00,\xff2\n\n2020-01-01 00:02:00,-3\n")
    rows = read_rows(path, positional=True)
    assert rows.times == ["2020-01-01 00:00:00", "2020-01-01 00:01:00", "bad", "2020-01-01 00:03:00",
                          "2020-01-01 00:02:00"]
    assert rows.values[0] == 1.5 and rows.values[4] == -3.0
    assert np.isnan(rows.values[1:4]).all()  # not a number, missing, an invalid byte
