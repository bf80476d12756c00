"""Hot model reload in a running worker: swap, refuse a corrupt model, roll back by command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from export.manifest import FORECAST_MODEL
from streaming import topics
from tests.integration.conftest import tick_messages
from tests.integration.kafka_io import REPO, WorkerProcess, consume, metric, produce, scrape
from tests.model_factory import write_tiny_forecast

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def serving(worker: WorkerProcess, version: str) -> bool:
    return metric(scrape(worker.metrics_url), "sentinel_model_info", version=version) == 1


def forecasts_for(worker: WorkerProcess, symbol: str, n: int) -> list[dict]:
    return [x for x in consume(worker.bootstrap, worker.topic(topics.FORECASTS),
                               lambda r: sum(x["symbol"] == symbol for x in r) >= n)
            if x["symbol"] == symbol]


def test_swap_refuse_and_rollback(kafka_broker: object, tiny_models_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    v1 = next((models / FORECAST_MODEL).iterdir()).name
    worker = WorkerProcess(kafka_broker.bootstrap, models, tmp_path / "state",  # type: ignore[attr-defined]
                           env={"SENTINEL_MODEL_RELOAD_INTERVAL_S": "1"}).start()
    ticks = tick_messages("HOT", 400)
    try:
        produce(worker.bootstrap, worker.topic(topics.TICKS), ticks[:100])
        assert {x["model"] for x in forecasts_for(worker, "HOT", 41)} == {f"{FORECAST_MODEL}@{v1}"}
        time.sleep(1.1)
        v2 = write_tiny_forecast(models, weight=0.25).name
        wait_for(lambda: serving(worker, v2))
        produce(worker.bootstrap, worker.topic(topics.TICKS), ticks[100:200])
        refs = [x["model"] for x in forecasts_for(worker, "HOT", 141)]
        assert refs[-1] == f"{FORECAST_MODEL}@{v2}"
        assert set(refs) <= {f"{FORECAST_MODEL}@{v}" for v in (v1, v2)}
        time.sleep(1.1)
        bad = write_tiny_forecast(models, weight=0.9)
        (bad / "model.onnx").write_bytes(b"corrupt")
        wait_for(lambda: metric(scrape(worker.metrics_url), "sentinel_model_load_failures_total") >= 1)
        assert serving(worker, v2)
        shutil.rmtree(bad)
        out = subprocess.run([sys.executable, "-m", "sentinel", "models", "rollback", FORECAST_MODEL,
                              "--models-dir", str(models)], cwd=REPO, capture_output=True, text=True)
        assert out.returncode == 0 and v1 in out.stdout, out.stderr
        wait_for(lambda: serving(worker, v1))
        produce(worker.bootstrap, worker.topic(topics.TICKS), ticks[200:300])
        assert forecasts_for(worker, "HOT", 241)[-1]["model"] == f"{FORECAST_MODEL}@{v1}"
        samples = scrape(worker.metrics_url)
        print(f"hot reload: swaps={metric(samples, 'sentinel_model_reloads_total', result='swapped'):.0f} "
              f"refused={metric(samples, 'sentinel_model_reloads_total', result='refused'):.0f}")
        assert metric(samples, "sentinel_model_reloads_total", result="swapped") == 2
        assert "model refused" in worker.log_text()
    finally:
        worker.stop()
