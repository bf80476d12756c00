"""Metrics and their baselines: persistence identity, threshold choice, classification keys."""

from __future__ import annotations

import numpy as np

from training.metrics import classification_metrics, forecast_metrics, residual_stats, threshold_for_recall


def test_persistence_forecast_scores_exactly_as_the_baseline() -> None:
    last = np.array([10.0, 11.0, 12.0, 11.0])
    actual = np.array([11.0, 12.0, 11.0, 11.5])
    m = forecast_metrics(actual, last, last)
    assert m["rmse"] == m["persistence_rmse"] and m["rmse_vs_persistence"] == 1.0
    perfect = forecast_metrics(actual, actual, last)
    assert perfect["rmse"] == 0.0 and perfect["directional_accuracy"] == 1.0
    assert abs(m["rmse_pct"] - 100 * m["rmse"] / actual.mean()) < 1e-12


def test_residual_stats_describe_log_residuals() -> None:
    rng = np.random.default_rng(0)
    f = np.full(20000, 100.0)
    r = residual_stats(f * np.exp(rng.normal(0, 0.01, f.size)), f)
    assert abs(r["residual_log_std"] - 0.01) < 5e-4 and abs(r["residual_log_mad_sigma"] - 0.01) < 5e-4


def test_threshold_reaches_the_target_recall_with_the_highest_cut() -> None:
    y = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    p = np.array([0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.95])
    t = threshold_for_recall(y, p, 0.9)
    assert t == 0.2 and np.mean(p[y == 1] >= t) >= 0.9


def test_classification_metrics_have_the_contract_keys() -> None:
    y = np.array([1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.3, 0.6, 0.1, 0.2])
    m = classification_metrics(y, p, 0.5)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "threshold", "per_class",
                "confusion_matrix", "n"):
        assert key in m
    assert m["per_class"]["negative"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["confusion_matrix"]["rows_true_cols_pred"] == [[1, 1], [1, 3]]
    assert m["roc_auc"] == 0.875


def test_recall_lower_bound_matches_the_wilson_interval() -> None:
    from training.metrics import recall_lower_bound

    # Wilson 90 % one-sided (z = 1.2816) for 900 of 1000: 0.8872 (the formula by hand)
    assert abs(recall_lower_bound(900, 1000, 0.9) - 0.88718) < 1e-4
    assert recall_lower_bound(1000, 1000, 0.9) < 1.0
    assert recall_lower_bound(90, 100, 0.9) < recall_lower_bound(900, 1000, 0.9) < 0.9


def test_threshold_with_confidence_aims_above_the_target_by_a_margin_that_shrinks_with_n() -> None:
    rng = np.random.default_rng(3)
    margins = []
    for n in (300, 3000):
        y = np.r_[np.ones(n, int), np.zeros(n, int)]
        p = rng.random(2 * n)
        plain = threshold_for_recall(y, p, 0.9)
        safe = threshold_for_recall(y, p, 0.9, confidence=0.9)
        recall = np.mean(p[y == 1] >= safe)
        assert safe < plain and recall > 0.9
        margins.append(recall - 0.9)
    assert margins[1] < margins[0] / 2
