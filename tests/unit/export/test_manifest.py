"""Model directories: hash verification and refusal of mismatched manifests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from export.errors import ModelError
from export.manifest import (
    Manifest,
    TensorSpec,
    content_version,
    read_manifest,
    verify_hash,
    write_model_dir,
)
from export.onnx_convert import check_graph
from tests.model_factory import forecast_onnx


def _manifest(data: bytes) -> Manifest:
    return Manifest(name="price-forecast", version=content_version(data), kind="forecast",
                    inputs=[TensorSpec("window", "float32", [None, 60, 1])],
                    outputs=[TensorSpec("forecast", "float32", [None, 1])],
                    preprocessing={"id": "log_relative_last_v1", "window": 60, "scale": 10.0},
                    onnx_sha256=hashlib.sha256(data).hexdigest())


def test_written_model_verifies(tmp_path: Path) -> None:
    data = forecast_onnx()
    target = write_model_dir(tmp_path, _manifest(data), data)
    manifest = read_manifest(target)
    assert verify_hash(target, manifest).read_bytes() == data
    assert write_model_dir(tmp_path, manifest, data) == target  # same bytes: idempotent


def test_tampered_onnx_is_refused(tmp_path: Path) -> None:
    data = forecast_onnx()
    target = write_model_dir(tmp_path, _manifest(data), data)
    (target / "model.onnx").write_bytes(forecast_onnx(0.25))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        verify_hash(target, read_manifest(target))


def test_different_model_never_overwrites_a_version(tmp_path: Path) -> None:
    data, other = forecast_onnx(), forecast_onnx(0.25)
    write_model_dir(tmp_path, _manifest(data), data)
    clash = Manifest(**{**_manifest(data).__dict__, "onnx_sha256": hashlib.sha256(other).hexdigest()})
    with pytest.raises(ModelError, match="different model"):
        write_model_dir(tmp_path, clash, other)


def test_incomplete_manifest_is_refused(tmp_path: Path) -> None:
    data = forecast_onnx()
    target = write_model_dir(tmp_path, _manifest(data), data)
    raw = json.loads((target / "manifest.json").read_text())
    del raw["onnx_sha256"]
    (target / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="missing onnx_sha256"):
        read_manifest(target)


def test_graph_that_disagrees_with_the_manifest_is_refused() -> None:
    data = forecast_onnx()
    out = TensorSpec("forecast", "float32", [None, 1])
    check_graph(data, TensorSpec("window", "float32", [None, 60, 1]), out)
    with pytest.raises(ModelError, match="window"):
        check_graph(data, TensorSpec("window", "float32", [None, 30, 1]), out)
    with pytest.raises(ModelError, match="tensors"):
        check_graph(data, TensorSpec("tokens", "int64", [None, 60]), out)


def test_calibration_block_round_trips_and_defaults_to_none(tmp_path: Path) -> None:
    from dataclasses import replace

    data = forecast_onnx()
    cal = {"id": "logit_temperature_bias_v1", "temperature": 1.7, "bias": -0.4, "n": 10}
    target = write_model_dir(tmp_path, replace(_manifest(data), calibration=cal), data)
    assert read_manifest(target).calibration == cal
    raw = json.loads((target / "manifest.json").read_text())
    del raw["calibration"]  # a manifest written before the field existed
    (target / "manifest.json").write_text(json.dumps(raw))
    assert read_manifest(target).calibration == {}
