"""Detection quality end to end: a labelled synthetic stream through the real broker and worker.

The worker runs with its shipped defaults (threshold, warm-up) and the released forecast
model when one is present under ``models/`` (tiny ONNX models otherwise); its alerts
are compared with the generator's labels: recall on 6σ spikes must be at least 0.9 and
pure noise may raise at most one false alert per 1,000 ticks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from export.errors import ModelError
from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from streaming import topics
from streaming.core.schemas import Tick
from streaming.evaluation.scoring import Counts, Window, evaluate
from streaming.serving.inference import latest_version_dir
from streaming.sources.producers import tick_payload
from streaming.sources.synthetic import SyntheticConfig, generate, iter_noise
from tests.integration.kafka_io import REPO, WorkerProcess, consume, produce
from tests.model_factory import write_tiny_forecast, write_tiny_sentiment

SPIKES = SyntheticConfig(symbols=8, ticks_per_symbol=2500, kinds=("spike",), spike_sigmas=6.0,
                         anomaly_rate=0.01, seed=21)
NOISE_SYMBOLS = 8
WINDOW = 60  # the forecast model's window: the first forecast is made on tick 60


@pytest.fixture(scope="module")
def quality_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Released models when present (copied, so a concurrent release cannot interfere)."""
    root = tmp_path_factory.mktemp("quality-models")
    for name, write_tiny in ((FORECAST_MODEL, write_tiny_forecast), (SENTIMENT_MODEL, write_tiny_sentiment)):
        try:
            src = latest_version_dir(REPO / "models", name)
        except ModelError:
            write_tiny(root)
            continue
        shutil.copytree(src, root / name / src.name)
    return root


@pytest.fixture(scope="module")
def quality_worker(kafka_broker: object, quality_models: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(kafka_broker.bootstrap, quality_models,  # type: ignore[attr-defined]
                         tmp_path_factory.mktemp("quality") / "state").start()
    yield proc
    proc.stop()


def _noise() -> list[Tick]:
    return [t for i in range(NOISE_SYMBOLS)
            for t in iter_noise(f"NZ{i:02d}", SPIKES.ticks_per_symbol, replace(SPIKES, seed=100 + i))]


def _run(worker: WorkerProcess, ticks: list[Tick]) -> list[dict[str, object]]:
    """Send every tick, wait until each has its forecast, then collect the alerts."""
    messages = [(t.symbol.encode(), tick_payload(t)) for t in ticks]
    produce(worker.bootstrap, worker.topic(topics.TICKS), messages)
    symbols = {t.symbol for t in ticks}
    expected = len(symbols) * (SPIKES.ticks_per_symbol - WINDOW + 1)

    def done(records: list[dict[str, object]]) -> bool:
        return len({(r["symbol"], r["ts"]) for r in records if r["symbol"] in symbols}) >= expected

    forecasts = consume(worker.bootstrap, worker.topic(topics.FORECASTS), done, timeout=300)
    assert done(forecasts), f"only {len(forecasts)} of {expected} forecasts arrived"
    return consume(worker.bootstrap, worker.topic(topics.ANOMALIES), lambda r: False, timeout=5)


def test_spike_recall_and_noise_false_positive_rate(quality_worker: WorkerProcess) -> None:
    ticks, labels = generate(SPIKES)
    noise = _noise()
    alerts = _run(quality_worker, ticks + noise)
    by_symbol: dict[str, set[int]] = {}
    for a in alerts:
        by_symbol.setdefault(str(a["symbol"]), set()).add(int(a["ts"]))  # type: ignore[call-overload]
    ts = SPIKES.start_ts + SPIKES.step_ms * np.arange(SPIKES.ticks_per_symbol, dtype=np.float64)
    spikes = Counts()
    for symbol, windows in labels.windows.items():
        flags = np.isin(ts, sorted(by_symbol.get(symbol, set())))
        spikes.add(evaluate(flags, ts, [Window(w[0], w[1], "spike") for w in windows],  # type: ignore[arg-type]
                            scored_from=0)[""])
    summary = spikes.summary()
    noise_alerts = sum(len(v) for k, v in by_symbol.items() if k.startswith("NZ"))
    fp_per_1k = 1000.0 * noise_alerts / len(noise)
    print(f"6σ spikes: {summary}; noise: {noise_alerts} alerts in {len(noise)} ticks ({fp_per_1k:.3f}/1k)")
    assert summary["windows"] >= 80
    assert summary["recall"] >= 0.9, summary
    assert fp_per_1k <= 1.0, f"{noise_alerts} false alerts on {len(noise)} noise ticks"
