"""Evaluation of models on any data: shared by training (Keras) and ``sentinel evaluate`` (ONNX).

``sentinel evaluate`` runs the exported ONNX file through onnxruntime after checking
its manifest and hash, so the figures describe exactly what the worker serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.calibration import apply_calibration
from export.errors import ModelError
from export.manifest import MANIFEST_FILE, Manifest, read_manifest, verify_hash
from export.preprocessing import denormalise_forecasts, normalise_windows
from export.tokenizer import Tokenizer, load_tokenizer
from training.data import DEFAULT_SPLIT, PriceSeries, WindowSet, window_sets
from training.metrics import classification_metrics, forecast_metrics

Predict = Callable[[npt.NDArray[Any]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class ForecastResult:
    """Per-ticker metrics plus the raw predictions (for plots and residuals)."""

    tickers: dict[str, dict[str, Any]]
    forecasts: dict[str, npt.NDArray[np.float64]]
    sets: dict[str, WindowSet]

    def summary(self) -> dict[str, Any]:
        return {"tickers": self.tickers, "mean": mean_metrics(self.tickers)}


def mean_metrics(tickers: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Unweighted mean over tickers of each numeric metric (so no one symbol dominates)."""
    keys = ("rmse_pct", "persistence_rmse_pct", "rmse_vs_persistence", "directional_accuracy")
    out = {}
    for key in keys:
        vals = [m[key] for m in tickers.values() if m.get(key) is not None]
        if vals:
            out[key] = float(np.mean(vals))
    return out


def forecast_sets(predict: Predict, sets: Sequence[WindowSet], scale: float) -> ForecastResult:
    """Forecast every window of every set and score it against persistence."""
    tickers, forecasts, by_symbol = {}, {}, {}
    for ws in sets:
        if len(ws.y) == 0:
            continue
        out = predict(normalise_windows(ws.x, scale)) if len(ws.y) else np.empty((0, 1))
        forecasts[ws.symbol] = denormalise_forecasts(ws.last, out, scale)
        tickers[ws.symbol] = forecast_metrics(ws.y, forecasts[ws.symbol], ws.last)
        by_symbol[ws.symbol] = ws
    return ForecastResult(tickers, forecasts, by_symbol)


def resolve_model_dir(path: Path, name: str | None = None) -> Path:
    """A version directory, or ``models/<name>`` (its newest version by manifest ``created``)."""
    if (path / MANIFEST_FILE).is_file():
        return path
    if name and (path / name).is_dir():  # the models root itself
        path = path / name
    versions = [p for p in path.iterdir() if (p / MANIFEST_FILE).is_file()] if path.is_dir() else []
    if not versions:
        raise ModelError("no model version found (expected manifest.json here or in a subdirectory)",
                         model_dir=path)
    return max(versions, key=lambda p: (read_manifest(p).created, p.name))


def open_onnx(model_dir: Path, kind: str) -> tuple[Manifest, Predict]:
    """Manifest + an onnxruntime predict function, refusing a wrong kind or a hash mismatch."""
    import onnxruntime as ort

    manifest = read_manifest(model_dir)
    if manifest.kind != kind:
        raise ModelError(f"expected a {kind} model, manifest says {manifest.kind}", model_dir=model_dir)
    session = ort.InferenceSession(str(verify_hash(model_dir, manifest)), providers=["CPUExecutionProvider"])
    name = manifest.inputs[0].name

    def predict(feed: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        parts = [session.run(None, {name: feed[i:i + 1024]})[0] for i in range(0, len(feed), 1024)]
        return np.concatenate(parts) if parts else np.empty((0, 1), np.float32)

    return manifest, predict


def evaluate_forecast(model_dir: Path, series: Sequence[PriceSeries], part: str = "all") -> dict[str, Any]:
    """``sentinel evaluate forecast``: per-ticker metrics of the shipped model vs persistence."""
    manifest, predict = open_onnx(model_dir, "forecast")
    window, scale = int(manifest.preprocessing["window"]), float(manifest.preprocessing["scale"])
    split = tuple(manifest.training.get("split", DEFAULT_SPLIT))
    result = forecast_sets(predict, window_sets(series, window, part, split), scale)
    return {"model": manifest.ref, "part": part, **result.summary()}


def model_tokenizer(model_dir: Path, manifest: Manifest) -> Tokenizer:
    pre = manifest.preprocessing
    vocab = model_dir / str(pre["vocab_file"])
    if not vocab.is_file():
        raise ModelError(f"vocabulary file {pre['vocab_file']} missing", model_dir=model_dir)
    return load_tokenizer(vocab, int(pre["max_len"]), str(pre["pattern"]), pre.get("ngrams"))


def evaluate_sentiment(model_dir: Path, texts: Sequence[str], labels: npt.NDArray[np.int64],
                       threshold: float | None = None) -> dict[str, Any]:
    """``sentinel evaluate sentiment``: metrics at the manifest's escalation threshold."""
    manifest, predict = open_onnx(model_dir, "sentiment")
    tokenizer = model_tokenizer(model_dir, manifest)
    p = apply_calibration(predict(tokenizer.encode(texts)).reshape(-1), manifest.calibration)
    t = threshold if threshold is not None else float(manifest.thresholds.get("escalation", 0.5))
    return {"model": manifest.ref, **classification_metrics(labels, p, t)}
