"""Small grid search for the forecast model (window length x units x learning rate).

Scored on the validation part only, as the ratio of model RMSE to persistence RMSE on
the same windows (< 1 beats persistence), so windows of different lengths compare fairly.
The served contract fixes the window at 60: the grid informs, it does not pick a release.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from training.data import PriceSeries, window_sets
from training.forecast import ForecastConfig, fit, keras_predict, xy
from training.tables import markdown

DEFAULT_GRID: dict[str, Sequence[Any]] = {"window": (30, 60), "units": (32, 100),
                                          "learning_rate": (1e-3, 3e-3)}
HEADERS = ["window", "units", "learning_rate", "epochs", "best_epoch", "val_rmse_norm",
           "val_persistence_rmse_norm", "ratio", "seconds"]


def grid_configs(base: ForecastConfig, grid: dict[str, Sequence[Any]] | None = None) -> list[ForecastConfig]:
    chosen = grid or DEFAULT_GRID
    keys = list(chosen)
    return [replace(base, **dict(zip(keys, values, strict=True)))
            for values in itertools.product(*(chosen[k] for k in keys))]


def score_config(cfg: ForecastConfig, series: Sequence[PriceSeries]) -> list[Any]:
    train = window_sets(series, cfg.window, "train", cfg.split)
    val = window_sets(series, cfg.window, "val", cfg.split)
    fitted = fit(cfg, train, val, description=f"w={cfg.window} u={cfg.units} lr={cfg.learning_rate:g}")
    x, y = xy(val, cfg.scale)
    pred = keras_predict(fitted.model)(x)
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    persistence = float(np.sqrt(np.mean(y**2)))  # persistence predicts 0 in the normalised space
    return [cfg.window, cfg.units, cfg.learning_rate, len(fitted.history["loss"]), fitted.best_epoch,
            rmse, persistence, rmse / persistence, round(fitted.seconds, 1)]


def run_grid(base: ForecastConfig, series: Sequence[PriceSeries], out_dir: Path) -> tuple[Path, str]:
    """Train every configuration, write ``forecast_grid.csv`` and ``.md``; best (lowest ratio) first."""
    rows = sorted((score_config(cfg, series) for cfg in grid_configs(base)), key=lambda r: r[7])
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = "\n".join(",".join(str(v) for v in row) for row in [HEADERS, *rows]) + "\n"
    (out_dir / "forecast_grid.csv").write_text(csv, encoding="utf-8")
    table = markdown(HEADERS, rows)
    (out_dir / "forecast_grid.md").write_text(table + "\n", encoding="utf-8")
    return out_dir / "forecast_grid.csv", table
