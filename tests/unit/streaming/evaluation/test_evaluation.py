"""The anomaly harness: causality, output format, metrics and the CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sentinel.cli import main
from streaming.errors import ConfigError
from streaming.evaluation.baselines import make_scorer
from streaming.evaluation.cli import detector_config
from streaming.evaluation.forecasters import (
    CausalForecaster,
    EwmaForecaster,
    NaiveForecaster,
    make_forecaster,
)
from streaming.evaluation.harness import Series, read_series, run_file, score_series
from streaming.evaluation.scoring import Window, evaluate, scaled_sigmoid


def _walk(n: int, seed: int = 0, spike_at: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = 50 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    if spike_at is not None:
        values[spike_at] *= math.exp(0.02)
    return values


def _forecasters(models_dir: Path) -> list[CausalForecaster]:
    return [NaiveForecaster(), EwmaForecaster(), make_forecaster("lstm", models_dir)]


@pytest.mark.parametrize("detector", ["adaptive", "zscore"])
def test_appending_or_changing_future_points_never_changes_earlier_scores(
        tiny_models_dir: Path, detector: str) -> None:
    values = _walk(900, spike_at=500)
    ts = np.arange(900, dtype=np.float64) * 60.0
    for forecaster in _forecasters(tiny_models_dir):
        full = score_series(ts, values, forecaster, make_scorer(detector), scored_from=135)
        for cut in (300, 501, 700):
            part = score_series(ts[:cut], values[:cut], forecaster, make_scorer(detector), 135)
            np.testing.assert_array_equal(part.scores, full.scores[:cut])
            np.testing.assert_array_equal(part.flags, full.flags[:cut])
            changed = values.copy()
            changed[cut:] *= 3.0  # a wildly different future
            other = score_series(ts, changed, forecaster, make_scorer(detector), 135)
            np.testing.assert_array_equal(other.scores[:cut], full.scores[:cut])
        assert full.flags[500], forecaster.name


def _write(path: Path, rows: list[tuple[object, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("timestamp", "value"), *rows])


def test_output_mirrors_the_tree_with_scores_in_unit_interval(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    stamps = [f"2024-01-{1 + i // 1440:02d} {i // 60 % 24:02d}:{i % 60:02d}:00" for i in range(1200)]
    _write(tmp_path / "in" / "a" / "b" / "s.csv", list(zip(stamps, _walk(1200, spike_at=900), strict=True)))
    labels = {"a/b/s.csv": [[stamps[900], stamps[901]]]}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    code = main(["evaluate", "anomalies", "--input", str(tmp_path / "in"), "--labels",
                 str(tmp_path / "labels.json"), "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    with (tmp_path / "out" / "a" / "b" / "s.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "value", "anomaly_score"] and len(rows) == 1201
    assert [r[0] for r in rows[1:]] == stamps
    scores = np.array([float(r[2]) for r in rows[1:]])
    assert np.all((scores >= 0) & (scores < 1)) and np.all(scores[:50] == 0)
    assert int(np.argmax(scores[180:])) + 180 in (900, 901)
    served = report["groups"]["ALL"]["served"]
    assert served["swept"]["score"] > 90 and served["ucr_protocol"] == {"solved": 1, "files": 1}
    assert {"windowed_gaussian", "rolling_z"} <= set(report["groups"]["ALL"])
    assert report["meta"]["date"] and "machine" in report["meta"]


def test_cli_reports_corpora_halves_and_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for corpus in ("c1", "c2"):
        for k in range(2):
            _write(tmp_path / "in" / corpus / f"x{k}.csv", list(enumerate(_walk(1000, seed=k, spike_at=600))))
        labels = {"x0": [[600, 601]], "x1": [[600, 601]]}
        (tmp_path / "in" / corpus / "labels.json").write_text(json.dumps(labels))
    assert main(["evaluate", "anomalies", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["groups"]) == {"ALL", "ALL:even", "ALL:odd", "c1", "c1:even", "c1:odd", "c2",
                                     "c2:even", "c2:odd"}
    assert report["groups"]["ALL"]["windows"] == 4 and report["groups"]["c1:odd"]["files"] == 1
    assert main(["evaluate", "anomalies", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "| ALL |" in text and "served swept" in text


def test_detector_options_are_typed_and_checked() -> None:
    cfg = detector_config(0.7, ["components=level+jump", "memory=500", "cooldown=7"])
    assert (cfg.threshold, cfg.series.components, cfg.series.memory, cfg.cooldown) == (
        0.7, ("level", "jump"), 500, 7)
    for bad in (["nope=1"], ["cooldown=x"], ["memory"]):
        with pytest.raises(ConfigError):
            detector_config(0.7, bad)


def test_missing_model_or_input_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "anomalies", "--input", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    _write(tmp_path / "in" / "x.csv", list(enumerate(_walk(100))))
    assert main(["evaluate", "anomalies", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                 "--forecaster", "lstm", "--models-dir", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.count("sentinel: error:") == 2


def test_zero_and_negative_series_score_the_jump_highest(tiny_models_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    values = np.cumsum(rng.normal(0, 1.0, 1000))  # crosses zero
    values[700] += 30.0
    path = tmp_path / "z.csv"
    _write(path, list(enumerate(values)))
    series = read_series(path, tmp_path)
    for forecaster in [*_forecasters(tiny_models_dir), make_forecaster("none")]:
        result = run_file(series, [Window(700, 701)], [], forecaster, make_scorer("adaptive"), None)
        served = result.scores["served"]
        assert int(np.argmax(served)) in (700, 701), forecaster.name


def test_defects_are_ignored_counted_and_output_stays_aligned(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[tuple[object, object]] = [(i, float(v)) for i, v in enumerate(_walk(400))]
    rows[100] = (99, 1.0)  # clock steps back: late
    rows[101] = (101, "")  # missing value
    rows[102] = (102, "n/a")  # non-numeric value
    rows[103] = ("not a time", 5.0)  # unparseable timestamp
    rows[104] = (104, "inf")
    rows.insert(200, (199, 50.0))  # duplicate timestamp
    _write(tmp_path / "in" / "bad.csv", rows)
    _write(tmp_path / "in" / "flat.csv", [(i, 3.0) for i in range(300)])
    _write(tmp_path / "in" / "short.csv", [(0, 1.0), (1, 2.0)])
    _write(tmp_path / "in" / "empty.csv", [])
    assert main(["evaluate", "anomalies", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    bad = next(f for f in report["files"] if f["file"] == "bad.csv")
    assert bad["issues"] == {"late_or_duplicate": 2, "missing_value": 3, "bad_timestamp": 1}
    assert bad["rows"] == 401 and bad["accepted"] == 395
    lines = captured.err.strip().splitlines()
    assert len(lines) == 4 and any(line.startswith("bad.csv: 6 of 401 rows ignored") for line in lines)
    assert any("flat.csv" in line and "constant series" in line for line in lines)
    for name, n in (("bad.csv", 401), ("flat.csv", 300), ("short.csv", 2), ("empty.csv", 0)):
        with (tmp_path / "o" / name).open() as fh:
            out = list(csv.reader(fh))
        assert len(out) == n + 1
    with (tmp_path / "o" / "flat.csv").open() as fh:
        assert {r[2] for r in list(csv.reader(fh))[1:]} == {"0.0"}
    assert report["groups"]["ALL"]["served"]["swept"]["threshold"] is None  # no labels: strict JSON


def test_series_accepts_rows_like_the_worker() -> None:
    ts = np.array([1.0, 2.0, 2.0, 1.5, np.nan, 3.0, 4.0])
    values = np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.nan, 2.0])
    s = Series("x.csv", [""] * 7, ts, values)
    assert s.accepted.tolist() == [0, 1, 6]
    assert s.issues == {"late_or_duplicate": 2, "bad_timestamp": 1, "missing_value": 1}


def test_metrics_count_events_delays_and_the_window_score() -> None:
    ts = np.arange(100, dtype=np.float64)
    flags = np.zeros(100, dtype=bool)
    flags[[5, 30, 32, 50, 90]] = True  # 5 is in the probation prefix
    windows = [Window(30, 39, "a"), Window(60, 61, "b"), Window(2, 4, "c")]
    counts = evaluate(flags, ts, windows, scored_from=10)
    s = counts[""].summary()
    assert (s["windows"], s["detected"], s["false_positives"], s["alerts"]) == (2, 1, 2, 4)
    assert s["precision"] == 1 / 3 and s["recall"] == 0.5 and s["mean_delay"] == 0.0
    raw = scaled_sigmoid(-1.0) - 1.0 - 2 * 0.11
    assert s["window_score"] == pytest.approx(100 * (raw + 2) / (2 * scaled_sigmoid(-1.0) + 2))
    assert counts["a"].summary()["recall"] == 1.0 and counts["b"].summary()["recall"] == 0.0
    assert s["fp_per_1k"] == pytest.approx(1000 * 2 / (90 - 12))
