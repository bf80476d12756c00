"""End to end on tiny data: train -> export (parity-gated) -> evaluate the ONNX release."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from export.manifest import read_manifest, verify_hash
from training.cli import add_evaluate_parsers, add_export_parser, add_train_parsers

pytestmark = pytest.mark.train


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sentinel")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parsers(sub)
    add_evaluate_parsers(sub)
    add_export_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_forecast_train_export_evaluate(price_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    models, run = tmp_path / "models", tmp_path / "run"
    assert _run(["train", "forecast", "--csv-dir", str(price_dir), "--tickers", "AAA,BBB", "--epochs", "1",
                 "--units", "4", "--window", "60", "--run-dir", str(run), "--export-to", str(models),
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").rglob("*"))
    [version] = (models / "price-forecast").iterdir()
    manifest = read_manifest(version)
    verify_hash(version, manifest)
    assert manifest.preprocessing == {"id": "log_relative_last_v1", "window": 60, "scale": 10.0}
    assert manifest.metrics["residual_log_std"] > 0 and manifest.parity["max_abs_diff"] <= 1e-4
    assert set(manifest.metrics["test"]["tickers"]) == {"AAA", "BBB"}
    capsys.readouterr()
    assert _run(["evaluate", "forecast", "--model", str(models / "price-forecast"),
                 "--csv-dir", str(price_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["tickers"]) == {"AAA", "BBB", "CCC"}
    assert {"rmse", "mae", "rmse_pct", "directional_accuracy", "persistence_rmse", "persistence_mae",
            "n"} <= set(result["tickers"]["CCC"])
    assert _run(["export", str(run), "--to", str(models)]) == 0  # re-export of the same run: same version


def test_sentiment_train_export_evaluate(reviews_csv: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    assert _run(["train", "sentiment", "--csv", str(reviews_csv), "--text-col", "Title,Review Text",
                 "--label-col", "Rating", "--epochs", "2", "--max-len", "16", "--embed-dim", "8",
                 "--units", "4",
                 "--run-dir", str(tmp_path / "run"), "--export-to", str(models),
                 "--report", str(tmp_path / "report")]) == 0
    [version] = (models / "feedback-sentiment").iterdir()
    manifest = read_manifest(version)
    assert (version / "vocab.json").is_file() and manifest.preprocessing["max_len"] == 16
    assert 0.0 <= manifest.thresholds["escalation"] <= 1.0
    assert len(list((tmp_path / "report").glob("*.png"))) == 5
    capsys.readouterr()
    assert _run(["evaluate", "sentiment", "--model", str(version), "--csv", str(reviews_csv), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == manifest.thresholds["escalation"]
    assert result["per_class"]["negative"]["recall"] > 0.5 and result["n"] > 200


def test_wide_deep_sentiment_is_calibrated_exported_and_reloaded(reviews_csv: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    models, run = tmp_path / "models", tmp_path / "run"
    assert _run(["train", "sentiment", "--csv", str(reviews_csv), "--text-col", "Title,Review Text",
                 "--label-col", "Rating", "--epochs", "2", "--max-len", "16", "--embed-dim", "8",
                 "--units", "4", "--arch", "bidirectional", "--pooling", "maxmean", "--ngrams", "2",
                 "--ngram-buckets", "512", "--run-dir", str(run), "--export-to", str(models),
                 "--metrics-out", str(tmp_path / "metrics.json")]) == 0
    [version] = (models / "feedback-sentiment").iterdir()
    manifest = read_manifest(version)
    ngrams = manifest.preprocessing["ngrams"]
    assert manifest.preprocessing["id"] == "word_lower_ngram_hash_v1" and ngrams["max_n"] == 2
    assert manifest.inputs[0].shape == [None, 16 + ngrams["width"]]
    assert manifest.calibration["id"] == "logit_temperature_bias_v1"
    assert manifest.calibration["temperature"] > 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"ece_test_raw", "ece_test_calibrated"} <= set(metrics["calibration"])
    assert metrics["lstm"]["ece"] == pytest.approx(metrics["calibration"]["ece_test_calibrated"])
    capsys.readouterr()
    assert _run(["evaluate", "sentiment", "--model", str(version), "--csv", str(reviews_csv), "--json",
                 "--part", "test"]) == 0
    result = json.loads(capsys.readouterr().out)
    # onnxruntime + numpy calibration re-create the training-time test figures
    assert result["roc_auc"] == pytest.approx(metrics["lstm"]["roc_auc"], abs=1e-6)
    assert result["ece"] == pytest.approx(metrics["lstm"]["ece"], abs=1e-5)
    shutil.rmtree(models)
    assert _run(["export", str(run), "--to", str(models)]) == 0  # the saved run reloads its custom layers
    [again] = (models / "feedback-sentiment").iterdir()
    assert read_manifest(again).calibration == manifest.calibration
