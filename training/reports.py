"""PNG reports a person would look at: losses, forecasts vs persistence, residuals, ROC, PCA.

matplotlib runs headless (Agg); every function writes one file and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def loss_curves(history: Mapping[str, list[float]], path: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("loss", "val_loss"):
        if history.get(key):
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", label=key)
    if history.get("val_loss"):
        best = int(np.argmin(history["val_loss"]))
        ax.axvline(best + 1, color="grey", ls="--", lw=1, label=f"best epoch {best + 1} (restored)")
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend()
    return _save(fig, path)


def forecasts_vs_actual(result: Any, path: Path, last_n: int = 90) -> Path:
    """One panel per ticker: actual close, model forecast, persistence, over the last test days."""
    plt = _plt()
    import matplotlib.dates as mdates

    symbols = sorted(result.sets)
    cols = 2
    rows = (len(symbols) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.8 * rows), squeeze=False)
    for ax, sym in zip(axes.flat, symbols, strict=False):
        ws, f = result.sets[sym], result.forecasts[sym]
        sl = slice(max(0, len(ws.y) - last_n), len(ws.y))
        ax.plot(ws.dates[sl], ws.y[sl], color="black", lw=1.4, label="actual")
        ax.plot(ws.dates[sl], f[sl], color="tab:blue", lw=1.0, label="LSTM forecast")
        ax.plot(ws.dates[sl], ws.last[sl], color="tab:orange", lw=0.9, ls="--", label="persistence")
        m = result.tickers[sym]
        ax.set_title(f"{sym}: RMSE {m['rmse']:.2f} vs persistence {m['persistence_rmse']:.2f}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    for ax in list(axes.flat)[len(symbols):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Next-day close on the test period (last {last_n} days)")
    return _save(fig, path)


def residual_histogram(residuals: npt.NDArray[np.float64], sigma: float, path: Path, title: str) -> Path:
    """Test residuals log(actual/forecast) against a normal with the train sigma (fat tails show)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    lim = float(np.quantile(np.abs(residuals), 0.999)) * 1.1
    bins = np.linspace(-lim, lim, 80)
    ax.hist(residuals, bins=bins, density=True, alpha=0.6, label=f"test residuals (n={residuals.size})")
    xs = np.linspace(-lim, lim, 400)
    ax.plot(xs, np.exp(-0.5 * (xs / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)), color="red",
            label=f"normal, train sigma={sigma:.4f}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.3 / (residuals.size * (bins[1] - bins[0])))  # one count's height, not 1e-10
    ax.set(xlabel="log(actual / forecast)", ylabel="density (log scale)", title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def confusion_matrix(cm: list[list[int]], labels: list[str], path: Path, title: str) -> Path:
    plt = _plt()
    arr = np.asarray(cm)
    shares = arr / np.maximum(1, arr.sum(axis=1, keepdims=True))  # colour by row: classes are imbalanced
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), v in np.ndenumerate(arr):
        ax.text(j, i, f"{v}\n({shares[i, j]:.0%} of row)", ha="center", va="center",
                color="white" if shares[i, j] > 0.5 else "black")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)


def roc_curves(curves: Mapping[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]], path: Path,
               title: str, markers: Mapping[str, float] | None = None) -> Path:
    """ROC per model (label 1 = negative is the positive class), each threshold as a dot."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (y, p) in curves.items():
        fpr, tpr, thr = roc_curve(y, p)
        line = ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")[0]
        if markers and name in markers:
            k = int(np.argmin(np.abs(thr - markers[name])))
            ax.plot(fpr[k], tpr[k], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.set(xlabel="false positive rate (positives flagged)", ylabel="negative recall", title=title)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def pca_2d(states: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """First two principal components and their explained-variance ratios (numpy SVD)."""
    centred = states - states.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max(1e-12, float((s**2).sum()))
    return centred @ vt[:2].T, var[:2]


def hidden_state_pca(states: npt.NDArray[np.float64], colour: npt.NDArray[np.float64], path: Path,
                     title: str, colour_label: str) -> Path:
    """Where inputs land in the encoder's state space: structure the model actually uses."""
    plt = _plt()
    pcs, var = pca_2d(np.asarray(states, dtype=np.float64))
    fig, ax = plt.subplots(figsize=(6.5, 5))
    lim = float(np.quantile(np.abs(colour), 0.98)) or 1.0
    sc = ax.scatter(pcs[:, 0], pcs[:, 1], c=colour, cmap="coolwarm", s=8, alpha=0.8,
                    vmin=-lim if colour.min() < 0 else colour.min(), vmax=lim)
    fig.colorbar(sc, ax=ax, label=colour_label)
    ax.set(xlabel=f"PC1 ({var[0]:.0%} of variance)", ylabel=f"PC2 ({var[1]:.0%})", title=title)
    return _save(fig, path)


def reliability_diagram(curves: Mapping[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]], path: Path,
                        title: str, bins: int = 15) -> Path:
    """Observed fraction of negatives per predicted-probability bin, ECE in the legend."""
    from export.calibration import expected_calibration_error, reliability_table

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    for name, (y, p) in curves.items():
        rows = [r for r in reliability_table(y, p, bins) if r["n"]]
        ece = expected_calibration_error(y, p, bins)
        ax.plot([r["mean_p"] for r in rows], [r["frac_pos"] for r in rows], marker="o",
                label=f"{name} (ECE {ece:.3f})")
    ax.set(xlabel="predicted p_negative (bin mean)", ylabel="observed fraction negative", title=title,
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)
