"""Evaluation metrics, each reported next to its baseline.

Forecasts are compared with persistence (tomorrow = today): on daily closes that is
hard to beat, so a model is only useful if it does. Classifiers are judged at the
escalation threshold (the decision the worker makes), with balanced metrics because
negatives are rare in customer feedback.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from export.calibration import expected_calibration_error

Array = npt.NDArray[np.float64]


def forecast_metrics(actual: Array, forecast: Array, last: Array) -> dict[str, Any]:
    """RMSE/MAE in price units, RMSE as % of the mean price, direction hit rate; persistence beside."""
    actual, forecast, last = (np.asarray(a, dtype=np.float64) for a in (actual, forecast, last))
    n = len(actual)
    if n == 0:
        return {"n": 0}
    err, p_err = forecast - actual, last - actual
    moved = actual != last
    hits = np.sign(forecast - last)[moved] == np.sign(actual - last)[moved]
    rmse, p_rmse = float(np.sqrt(np.mean(err**2))), float(np.sqrt(np.mean(p_err**2)))
    mean_price = float(np.mean(actual))
    return {"rmse": rmse, "mae": float(np.mean(np.abs(err))), "rmse_pct": 100.0 * rmse / mean_price,
            "directional_accuracy": float(np.mean(hits)) if hits.size else None,
            "persistence_rmse": p_rmse, "persistence_mae": float(np.mean(np.abs(p_err))),
            "persistence_rmse_pct": 100.0 * p_rmse / mean_price,
            "rmse_vs_persistence": rmse / p_rmse if p_rmse else None, "n": n}


def residual_stats(actual: Array, forecast: Array) -> dict[str, float]:
    """Distribution of ``log(actual / forecast)``: what the anomaly detector scores."""
    r = np.log(np.asarray(actual, dtype=np.float64) / np.asarray(forecast, dtype=np.float64))
    med = float(np.median(r))
    mad = float(np.median(np.abs(r - med)))
    std = float(np.std(r))
    kurt = float(np.mean((r - r.mean()) ** 4) / std**4 - 3.0) if std else 0.0
    q = np.quantile(r, [0.001, 0.01, 0.5, 0.99, 0.999])
    return {"residual_log_mean": float(np.mean(r)), "residual_log_std": std, "residual_log_median": med,
            "residual_log_mad_sigma": 1.4826 * mad, "residual_log_excess_kurtosis": kurt,
            "residual_log_q001": float(q[0]), "residual_log_q01": float(q[1]),
            "residual_log_q99": float(q[3]), "residual_log_q999": float(q[4]), "residual_n": int(r.size)}


def recall_lower_bound(k: int, n: int, confidence: float) -> float:
    """One-sided Wilson lower bound on a recall of ``k`` in ``n`` at ``confidence``."""
    if n == 0:
        return 0.0
    z = NormalDist().inv_cdf(confidence)
    phat = k / n
    centre = phat + z * z / (2 * n)
    margin = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


def threshold_for_recall(y_true: npt.ArrayLike, p_negative: npt.ArrayLike, target: float = 0.90,
                         confidence: float = 0.0) -> float:
    """Highest threshold whose negative recall is >= ``target`` (so precision is as high as allowed).

    With ``confidence`` > 0 the recall's one-sided Wilson lower bound must reach ``target``:
    a threshold aimed exactly at the target misses it on a new sample about half the time,
    and the margin this asks for shrinks as the number of negatives it is chosen on grows.
    """
    y = np.asarray(y_true)
    p = np.asarray(p_negative, dtype=np.float64).reshape(-1)
    neg = np.sort(p[y == 1])[::-1]
    if neg.size == 0:
        return 0.5
    k = min(neg.size, int(np.ceil(target * neg.size)))  # need k negatives at or above the threshold
    if confidence > 0:
        while k < neg.size and recall_lower_bound(k, neg.size, confidence) < target:
            k += 1
    return float(neg[k - 1])


def classification_metrics(y_true: npt.ArrayLike, p_negative: npt.ArrayLike,
                           threshold: float) -> dict[str, Any]:
    """Metrics of ``p_negative >= threshold`` as the negative decision (label 1 = negative)."""
    from sklearn import metrics as skm

    y = np.asarray(y_true).astype(int)
    p = np.asarray(p_negative, dtype=np.float64).reshape(-1)
    pred = (p >= threshold).astype(int)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, pred, labels=[1, 0], zero_division=0)
    cm = skm.confusion_matrix(y, pred, labels=[1, 0])
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)), "threshold": float(threshold),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)) if both else None,
        "macro_f1": float(np.mean(f1)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else None,
        "average_precision": float(skm.average_precision_score(y, p)) if both else None,
        "per_class": {name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                             "support": int(sup[i])} for i, name in enumerate(("negative", "positive"))},
        "confusion_matrix": {"labels": ["negative", "positive"], "rows_true_cols_pred": cm.tolist()},
        "at_0_5": _at_half(y, p),
        "ece": expected_calibration_error(y, p, 15),
        "oracle_precision_at_recall_0_90": _oracle_precision(y, p, 0.90) if both else None,
        "oracle_precision_at_recall_0_95": _oracle_precision(y, p, 0.95) if both else None,
        # P1 needs p_negative >= 0.9: a calibrated model's messages there are ~90 %+ negative
        "band_0_9": {"n": int((p >= 0.9).sum()),
                     "negative_share": float(y[p >= 0.9].mean()) if (p >= 0.9).any() else None},
    }


def _oracle_precision(y: npt.NDArray[np.int64], p: Array, recall: float) -> float:
    """Best negative precision of any threshold with recall >= ``recall`` on these very rows.

    Not an operating point (the threshold is fitted to the rows it is scored on); it shows
    how much of a precision shortfall is the model's ranking and how much the threshold's.
    """
    from sklearn import metrics as skm

    prec, rec, _ = skm.precision_recall_curve(y, p)
    return float(prec[rec >= recall].max())


def _at_half(y: npt.NDArray[np.int64], p: Array) -> dict[str, float]:
    """The same headline metrics at 0.5, the threshold benchmark papers report."""
    from sklearn import metrics as skm

    pred = (p >= 0.5).astype(int)
    return {"accuracy": float(skm.accuracy_score(y, pred)),
            "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
            "macro_f1": float(skm.f1_score(y, pred, average="macro", zero_division=0))}
