"""Probability calibration applied at serving time (numpy only), fitted on validation.

The model's sigmoid output is mapped through ``sigmoid((logit(p) - bias) / temperature)``.
``temperature`` alone is temperature scaling; the bias additionally removes the shift that
class-balanced training weights put into every probability (Platt scaling on the logit).
The parameters live in the manifest's ``calibration`` block, so the worker applies
exactly what training fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

CALIBRATION_ID = "logit_temperature_bias_v1"
# float32 sigmoid outputs saturate near 1 - 6e-8; clip so logit() stays finite.
_EPS = 1e-7

FloatArray = npt.NDArray[np.float64]


def logit(p: npt.ArrayLike) -> FloatArray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


def sigmoid(z: npt.ArrayLike) -> FloatArray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def apply_calibration(p: npt.ArrayLike, calibration: dict[str, Any] | None) -> FloatArray:
    """Calibrated probabilities; ``p`` unchanged (as float64) without a calibration block."""
    p = np.asarray(p, dtype=np.float64)
    if not calibration:
        return p
    if calibration.get("id") != CALIBRATION_ID:
        raise ValueError(f"unsupported calibration {calibration.get('id')!r}")
    t, b = float(calibration["temperature"]), float(calibration["bias"])
    if not (np.isfinite(t) and t > 0 and np.isfinite(b)):
        raise ValueError(f"invalid calibration temperature={t} bias={b}")
    return sigmoid((logit(p) - b) / t)


def fit_calibration(p: npt.ArrayLike, y: npt.ArrayLike, with_bias: bool = True,
                    iterations: int = 100) -> dict[str, Any]:
    """Minimise validation log-loss of ``sigmoid(a * logit(p) + c)`` by damped Newton steps.

    Returns the manifest block: ``temperature = 1 / a``, ``bias = -c / a``.
    """
    z = logit(p)
    t = np.asarray(y, dtype=np.float64).reshape(-1)
    if z.shape != t.shape or z.size == 0:
        raise ValueError("p and y must be non-empty and of equal length")
    x = np.stack([z, np.ones_like(z)], axis=1) if with_bias else z[:, None]
    w = np.zeros(x.shape[1])
    w[0] = 1.0

    def loss(v: FloatArray) -> float:
        s = x @ v
        return float(np.mean(np.logaddexp(0.0, s) - t * s))

    current = loss(w)
    for _ in range(iterations):
        q = sigmoid(x @ w)
        grad = x.T @ (q - t)
        hess = (x * (q * (1.0 - q))[:, None]).T @ x + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(w - scale * step) > current:  # backtrack: no overshoot
            scale /= 2.0
        w = w - scale * step
        previous, current = current, loss(w)
        if previous - current < 1e-12:
            break
    a, c = float(w[0]), float(w[1]) if with_bias else 0.0
    if a <= 0:
        raise ValueError(f"calibration slope {a:.3g} <= 0: the scores do not rank the labels")
    return {"id": CALIBRATION_ID, "temperature": 1.0 / a, "bias": -c / a,
            "fitted_on": "validation", "n": int(z.size)}


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width bins of the predicted probability (of the positive label)."""
    table = reliability_table(y, p, bins)
    n = sum(row["n"] for row in table)
    gaps = sum(row["n"] * abs(row["mean_p"] - row["frac_pos"]) for row in table if row["n"])
    return float(gaps / max(n, 1))


def reliability_table(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 15) -> list[dict[str, Any]]:
    """Per bin: edges, count, mean predicted probability, observed fraction of positives."""
    pp = np.asarray(p, dtype=np.float64).reshape(-1)
    yy = np.asarray(y, dtype=np.float64).reshape(-1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(pp, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        k = int(sel.sum())
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": k,
                     "mean_p": float(pp[sel].mean()) if k else None,
                     "frac_pos": float(yy[sel].mean()) if k else None})
    return rows
