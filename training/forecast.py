"""Training the price-forecast model: several tickers together, early stopping, honest evaluation.

Inputs and targets use the shared window normalisation (export.preprocessing), so
the model is symbol- and price-level independent and serving cannot drift from it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.manifest import FORECAST_MODEL, TensorSpec
from export.preprocessing import DEFAULT_SCALE, NORMALISATION_ID, normalise_targets, normalise_windows
from training.data import DEFAULT_SPLIT, PriceSeries, WindowSet, date_range, stack, window_sets
from training.evaluate import ForecastResult, forecast_sets
from training.metrics import residual_stats
from training.models import FitResult, seed_everything, tensorboard_callback
from training.release import ReleaseSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForecastConfig:
    arch: str = "lstm"
    window: int = 60
    units: int = 100
    dropout: float = 0.0
    learning_rate: float = 1e-3
    epochs: int = 30
    batch_size: int = 64
    patience: int = 5
    seed: int = 42
    scale: float = DEFAULT_SCALE
    split: tuple[float, float, float] = DEFAULT_SPLIT


def xy(sets: Sequence[WindowSet], scale: float) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Model inputs and targets of all symbols, in the shared normalised space."""
    x, y = stack(sets)
    return normalise_windows(x, scale), normalise_targets(x[:, -1], y, scale)


def fit(cfg: ForecastConfig, train: Sequence[WindowSet], val: Sequence[WindowSet],
        tensorboard: Path | None = None, description: str = "forecast") -> FitResult:
    """Adam on MSE, early stopping on validation loss with the best weights restored."""
    import keras

    from training.models import build_forecast_model
    from training.progress import keras_progress

    seed_everything(cfg.seed)
    (x_tr, y_tr), (x_va, y_va) = xy(train, cfg.scale), xy(val, cfg.scale)
    model = build_forecast_model(cfg.arch, cfg.window, cfg.units, cfg.dropout, cfg.learning_rate)
    callbacks = [keras.callbacks.EarlyStopping(patience=cfg.patience, restore_best_weights=True),
                 keras_progress(cfg.epochs, description)]
    if tensorboard:
        callbacks.append(tensorboard_callback(tensorboard))
    t0 = time.perf_counter()
    hist = model.fit(x_tr, y_tr, validation_data=(x_va, y_va), epochs=cfg.epochs, batch_size=cfg.batch_size,
                     shuffle=True, callbacks=callbacks, verbose=0)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    best = int(np.argmin(history["val_loss"])) + 1
    return FitResult(model, history, time.perf_counter() - t0, best)


def keras_predict(model: Any) -> Any:
    """Eager batched calls: ``model.predict`` would re-trace for every ticker's window count."""
    def predict(x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        parts = [np.asarray(model(x[i:i + 1024], training=False)) for i in range(0, len(x), 1024)]
        return np.concatenate(parts).astype(np.float32) if parts else np.empty((0, 1), np.float32)

    return predict


def all_residuals(result: ForecastResult) -> npt.NDArray[np.float64]:
    parts = [np.log(result.sets[s].y / result.forecasts[s]) for s in sorted(result.sets)]
    return np.concatenate(parts) if parts else np.empty(0)


def parity_batch(sets: Sequence[WindowSet], scale: float, n: int = 256,
                 seed: int = 0) -> npt.NDArray[np.float32]:
    """Held-out (test) windows for the TF/ONNX parity check."""
    x, _ = xy(sets, scale)
    pick = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
    return x[np.sort(pick)]


def release_spec(cfg: ForecastConfig, fitted: FitResult, series: Sequence[PriceSeries], source: str,
                 metrics: dict[str, Any], counts: dict[str, int]) -> ReleaseSpec:
    """Everything the manifest says about this model, its data and its scores."""
    training = {"data": source, "tickers": [s.symbol for s in series], "date_range": date_range(series),
                "split": list(cfg.split), "split_rule": "chronological per ticker; windows never cross parts",
                "windows": counts, **{k: v for k, v in asdict(cfg).items() if k != "split"},
                "epochs_trained": len(fitted.history["loss"]), "best_epoch": fitted.best_epoch,
                "history": fitted.history,
                "train_seconds": round(fitted.seconds, 1),
                "target": "next close, log-relative to the last close x scale"}
    return ReleaseSpec(
        name=FORECAST_MODEL, kind="forecast",
        inputs=[TensorSpec("window", "float32", [None, cfg.window, 1])],
        outputs=[TensorSpec("forecast", "float32", [None, 1])],
        preprocessing={"id": NORMALISATION_ID, "window": cfg.window, "scale": cfg.scale},
        training=training, metrics=metrics)


def train_and_score(cfg: ForecastConfig, series: Sequence[PriceSeries], eval_series: Sequence[PriceSeries],
                    tensorboard: Path | None = None) -> tuple[FitResult, dict[str, Any], dict[str, Any]]:
    """Fit on the train parts, then score train residuals, test per ticker, and extra tickers."""
    parts = {p: window_sets(series, cfg.window, p, cfg.split) for p in ("train", "val", "test")}
    counts = {p: int(sum(len(s.y) for s in sets)) for p, sets in parts.items()}
    if counts["train"] == 0 or counts["val"] == 0:
        from training.errors import DataError

        raise DataError(f"not enough data for window {cfg.window}: windows per part {counts}")
    fitted = fit(cfg, parts["train"], parts["val"], tensorboard)
    predict = keras_predict(fitted.model)
    train_res = forecast_sets(predict, parts["train"], cfg.scale)
    test = forecast_sets(predict, parts["test"], cfg.scale)
    metrics: dict[str, Any] = {**residual_stats(*_flat(train_res)), "residual_source": "train part",
                               "test": test.summary(),
                               "test_residuals": residual_stats(*_flat(test)) if test.sets else {},
                               "val_loss": min(fitted.history["val_loss"])}
    if eval_series:
        extra = forecast_sets(predict, window_sets(eval_series, cfg.window, "all"), cfg.scale)
        metrics["extra_tickers"] = extra.summary()
    fitted.extra.update(test=test, parts=parts, counts=counts)
    return fitted, metrics, counts


def _flat(result: ForecastResult) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    syms = sorted(result.sets)
    return (np.concatenate([result.sets[s].y for s in syms]),
            np.concatenate([result.forecasts[s] for s in syms]))


def write_reports(fitted: FitResult, metrics: dict[str, Any], report_dir: Path, scale: float) -> list[Path]:
    """Loss curves, test forecasts vs persistence, residual histogram, hidden-state PCA."""
    from training import reports
    from training.models import encoder_model

    test: ForecastResult = fitted.extra["test"]
    paths = [reports.loss_curves(fitted.history, report_dir / "forecast_loss.png", "Forecast model: MSE"),
             reports.forecasts_vs_actual(test, report_dir / "forecast_vs_actual.png"),
             reports.residual_histogram(all_residuals(test), metrics["residual_log_std"],
                                        report_dir / "forecast_residuals.png",
                                        "Test residuals log(actual/forecast), all tickers")]
    x, _ = xy(list(test.sets.values()), scale)
    states = np.asarray(encoder_model(fitted.model).predict(x, batch_size=1024, verbose=0))
    # % log change over the window's last 20 days
    trend = ((x[:, -1, 0] - x[:, -21, 0]) / scale * 100.0).astype(np.float64)
    paths.append(reports.hidden_state_pca(states, trend, report_dir / "forecast_hidden_pca.png",
                                          "LSTM final hidden state, test windows (PCA)",
                                          "last-20-day return of the window (%)"))
    return paths
