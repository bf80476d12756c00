"""Benchmark parts that need no broker: the inference bound and the naive baselines.

The inference bound is what onnxruntime alone can do with the released models; the
naive baselines are what a tutorial would do (Keras ``model.predict`` on one window
per tick, or onnxruntime called once per tick). TensorFlow is imported only inside
:func:`keras_ticks_per_s`, which the bench runs in its own subprocess
(``python -m streaming.bench.inference keras``) so its threads and memory never
share a process with anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from export.preprocessing import normalise_windows
from streaming.serving.inference import Forecaster, SentimentClassifier, load_forecaster, load_sentiment
from streaming.serving.model_registry import wanted_dir
from streaming.settings import REPO_ROOT

BATCH_SIZES = (1, 8, 64, 256)
SENTIMENT_BATCHES = (1, 64, 256)
REPO = REPO_ROOT


def rate(fn: Callable[[], object], items_per_call: int, min_seconds: float, min_calls: int = 3) -> float:
    """Items per second of ``fn`` after one warm-up call, timed over at least ``min_seconds``."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= min_calls and elapsed >= min_seconds:
            return calls * items_per_call / elapsed


def price_windows(count: int, window: int = 60, seed: int = 7) -> npt.NDArray[np.float64]:
    """Random-walk price windows ``[count, window]`` at assorted price levels."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.002, size=(count, window)).cumsum(axis=1)
    levels = rng.uniform(5.0, 500.0, size=(count, 1))
    return levels * np.exp(steps)


def feedback_texts(vocab: list[str], count: int, seed: int = 11) -> list[str]:
    """Review-like texts of 20-80 words drawn from the model's own vocabulary."""
    rng = np.random.default_rng(seed)
    words = [w for w in vocab[2:] if w.isalpha()] or ["good", "bad", "product"]
    lengths = rng.integers(20, 80, size=count)
    return [" ".join(rng.choice(words, size=int(n))) for n in lengths]


def _forecast_table(forecaster: Forecaster, windows: npt.NDArray[np.float64],
                    min_seconds: float) -> dict[str, dict[str, float]]:
    """Per batch size: raw ``session.run`` windows/s and the full ``predict`` path windows/s."""
    out: dict[str, dict[str, float]] = {}
    for batch in BATCH_SIZES:
        x = windows[:batch]
        feed = normalise_windows(x, forecaster.scale)
        raw = rate(partial(forecaster.runner.run, feed), batch, min_seconds)
        full = rate(partial(forecaster.predict, x), batch, min_seconds)
        out[str(batch)] = {"onnx_windows_per_s": raw, "predict_windows_per_s": full,
                           "us_per_window": 1e6 / raw}
    return out


def forecast_bound(models_dir: Path, worker_threads: tuple[int, int], min_seconds: float) -> dict[str, Any]:
    """Forecast windows/s at each batch size, single-threaded and with the worker's sessions.

    ``worker_threads`` is (threads, threads for batches of 128+ rows), as the worker loads it.
    """
    model_dir = wanted_dir(models_dir, FORECAST_MODEL)
    windows = price_windows(max(BATCH_SIZES))
    configs = {"single_thread": (1, 0), "worker_threads": worker_threads}
    cores = os.cpu_count() or 1
    if max(worker_threads) < cores:  # also show what all cores would give
        configs["all_cores"] = (cores, 0)
    tables = {name: _forecast_table(load_forecaster(model_dir, *threads), windows, min_seconds)
              for name, threads in configs.items()}
    # The bound is the best the worker's configuration (or one thread) achieved.
    same = ("single_thread", "worker_threads")
    best_conf, best = max(((c, b) for c in same for b in tables[c]),
                          key=lambda cb: tables[cb[0]][cb[1]]["onnx_windows_per_s"])
    entry = tables[best_conf][best]
    return {"model_dir": str(model_dir), "threads": {k: list(v) for k, v in configs.items()},
            "by_threads": tables, "best_config": best_conf,
            "best_batch": int(best), "windows_per_s": entry["onnx_windows_per_s"],
            "predict_windows_per_s": entry["predict_windows_per_s"]}


def sentiment_bound(models_dir: Path, worker_threads: tuple[int, int], min_seconds: float) -> dict[str, Any]:
    """Sentiment messages/s (tokenise + run) at each batch size with the worker's sessions."""
    model_dir = wanted_dir(models_dir, SENTIMENT_MODEL)
    classifier: SentimentClassifier = load_sentiment(model_dir, *worker_threads)
    texts = feedback_texts(list(classifier.tokenizer.vocab), max(SENTIMENT_BATCHES))
    by_batch = {str(b): rate(partial(classifier.predict, texts[:b]), b, min_seconds)
                for b in SENTIMENT_BATCHES}
    best = max(by_batch, key=lambda b: by_batch[b])
    return {"model_dir": str(model_dir), "messages_per_s_by_batch": by_batch,
            "best_batch": int(best), "messages_per_s": by_batch[best],
            "max_len": classifier.tokenizer.max_len}


def onnx_unbatched_ticks_per_s(models_dir: Path, threads: int, ticks: int) -> float:
    """The naive serving loop with onnxruntime: one ``predict`` call per tick."""
    forecaster = load_forecaster(wanted_dir(models_dir, FORECAST_MODEL), threads)
    windows = price_windows(ticks)
    forecaster.predict(windows[:1])
    start = time.perf_counter()
    for i in range(ticks):
        forecaster.predict(windows[i:i + 1])
    return ticks / (time.perf_counter() - start)


def keras_ticks_per_s(model_dir: Path, calls: int, units: int = 100) -> dict[str, Any]:
    """Keras ``model.predict`` on one window per tick (what a tutorial's loop does).

    Uses the release's ``model.keras`` when shipped beside the ONNX file; otherwise
    builds the Keras twin of the forecast architecture (LSTM(units) x window + Dense(1)).
    Weights do not change the cost of a call, so the twin's timing stands for the model's.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras  # lazily: the serving install has no TensorFlow

    shipped = model_dir / "model.keras"
    window = int(json.loads((model_dir / "manifest.json").read_text())["preprocessing"]["window"])
    if shipped.is_file():
        model, source = keras.models.load_model(shipped, compile=False), "shipped model.keras"
    else:
        inp = keras.Input((window, 1), name="window")
        out = keras.layers.Dense(1)(keras.layers.LSTM(units)(inp))
        model, source = keras.Model(inp, out), f"Keras twin LSTM({units})x{window}+Dense(1)"
    windows = normalise_windows(price_windows(calls + 1, window))
    model.predict(windows[:1], verbose=0)
    start = time.perf_counter()
    for i in range(1, calls + 1):
        model.predict(windows[i:i + 1], verbose=0)
    elapsed = time.perf_counter() - start
    return {"ticks_per_s": calls / elapsed, "ms_per_call": 1000 * elapsed / calls, "calls": calls,
            "source": source, "keras_version": keras.__version__}


def keras_in_subprocess(models_dir: Path, calls: int, timeout: float = 300.0) -> dict[str, Any]:
    """Run :func:`keras_ticks_per_s` in a fresh interpreter; a note instead if TensorFlow is absent."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
        return {"ticks_per_s": None, "note": "skipped: tensorflow is not installed (pip install "
                "'.[train]' to measure the Keras baseline)"}
    model_dir = wanted_dir(models_dir, FORECAST_MODEL)
    cmd = [sys.executable, "-m", "streaming.bench.inference", "keras", str(model_dir), str(calls)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO,
                         check=False)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ticks_per_s": None, "note": f"Keras baseline failed: {tail}"}
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="naive Keras baseline (run by sentinel bench)")
    parser.add_argument("what", choices=["keras"])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("calls", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(keras_ticks_per_s(args.model_dir, args.calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
