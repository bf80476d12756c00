"""Hot reload: verified swaps, refusal of bad models, pin and rollback."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.samples import Sample

from export.errors import ModelError
from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from streaming.metrics import Metrics
from streaming.serving import model_registry as reg
from streaming.tools.scrape import parse
from tests.integration.kafka_io import metric
from tests.model_factory import write_tiny_forecast, write_tiny_models


def _samples(metrics: Metrics) -> list[Sample]:
    from prometheus_client.exposition import generate_latest

    return parse(generate_latest(metrics.registry).decode())


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, reg.ModelRegistry, Metrics]:
    write_tiny_models(tmp_path)
    metrics = Metrics(CollectorRegistry())
    registry = reg.ModelRegistry(tmp_path, metrics)
    registry.load_initial()
    return tmp_path, registry, metrics


def test_new_version_is_swapped_in(setup: tuple[Path, reg.ModelRegistry, Metrics]) -> None:
    root, registry, metrics = setup
    old = registry.forecaster
    time.sleep(1.1)  # manifests order by created (second resolution)
    new_dir = write_tiny_forecast(root, weight=0.25)
    assert registry.refresh() == [f"{FORECAST_MODEL}@{new_dir.name}"]
    assert registry.forecaster is not old and registry.forecaster.ref.endswith(new_dir.name)
    samples = _samples(metrics)
    assert metric(samples, "sentinel_model_info", name=FORECAST_MODEL) == 1
    assert metric(samples, "sentinel_model_info", version=new_dir.name) == 1
    assert registry.refresh() == []


Setup = tuple[Path, reg.ModelRegistry, Metrics]


def test_corrupt_model_is_refused_and_old_keeps_serving(setup: Setup) -> None:
    root, registry, metrics = setup
    serving = registry.forecaster
    time.sleep(1.1)
    bad = write_tiny_forecast(root, weight=0.75)
    (bad / "model.onnx").write_bytes(b"garbage")
    assert registry.refresh() == []
    assert registry.forecaster is serving
    assert metric(_samples(metrics), "sentinel_model_load_failures_total", name=FORECAST_MODEL) == 1
    assert registry.refresh() == []  # refused once, not retried until the files change
    assert metric(_samples(metrics), "sentinel_model_load_failures_total", name=FORECAST_MODEL) == 1


def test_mismatched_manifest_is_refused(setup: tuple[Path, reg.ModelRegistry, Metrics]) -> None:
    root, registry, _ = setup
    time.sleep(1.1)
    bad = write_tiny_forecast(root, weight=0.6)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["inputs"][0]["shape"] = [None, 30, 1]
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="does not match manifest"):
        reg.LOADERS[FORECAST_MODEL](bad, 1)
    assert registry.refresh() == []


def test_pin_and_rollback(setup: tuple[Path, reg.ModelRegistry, Metrics]) -> None:
    root, registry, _ = setup
    first = registry.forecaster.manifest.version
    time.sleep(1.1)
    second = write_tiny_forecast(root, weight=0.1).name
    registry.refresh()
    assert registry.forecaster.manifest.version == second
    assert reg.rollback(root, FORECAST_MODEL) == first
    registry.refresh()
    assert registry.forecaster.manifest.version == first
    reg.pin(root, FORECAST_MODEL, None)
    registry.refresh()
    assert registry.forecaster.manifest.version == second
    with pytest.raises(ModelError):
        reg.pin(root, FORECAST_MODEL, "nope")


def test_missing_models_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no price-forecast model"):
        reg.ModelRegistry(tmp_path, Metrics(CollectorRegistry())).load_initial()


def test_vocab_outside_model_dir_is_refused(tmp_path: Path) -> None:
    write_tiny_models(tmp_path)
    sentiment = reg.wanted_dir(tmp_path, SENTIMENT_MODEL)
    manifest = json.loads((sentiment / "manifest.json").read_text())
    manifest["preprocessing"]["vocab_file"] = "../../../etc/passwd"
    (sentiment / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(sentiment / "vocab.json", tmp_path / "vocab.json")
    with pytest.raises(ModelError, match="outside the model directory"):
        reg.LOADERS[SENTIMENT_MODEL](sentiment, 1)
