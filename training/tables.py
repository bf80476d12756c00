"""Plain-text (Markdown) tables of results: readable in a terminal and pasteable into docs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def forecast_table(tickers: dict[str, dict[str, Any]]) -> str:
    """Model vs persistence per ticker; ``ratio`` < 1 means the model beats persistence."""
    headers = ["ticker", "n", "RMSE", "RMSE %", "MAE", "dir. acc.", "persist. RMSE", "persist. RMSE %",
               "persist. MAE", "ratio"]
    rows = [[t, m["n"], m["rmse"], m["rmse_pct"], m["mae"], m["directional_accuracy"], m["persistence_rmse"],
             m["persistence_rmse_pct"], m["persistence_mae"], m["rmse_vs_persistence"]]
            for t, m in sorted(tickers.items()) if m.get("n")]
    return markdown(headers, rows)


def sentiment_table(results: dict[str, dict[str, Any]]) -> str:
    """Models side by side (columns) on one split; metrics at each model's own threshold."""
    names = list(results)
    spec = [("threshold", lambda m: m["threshold"]), ("accuracy", lambda m: m["accuracy"]),
            ("balanced accuracy", lambda m: m["balanced_accuracy"]), ("macro F1", lambda m: m["macro_f1"]),
            ("ROC-AUC", lambda m: m["roc_auc"]), ("average precision", lambda m: m["average_precision"]),
            ("negative recall", lambda m: m["per_class"]["negative"]["recall"]),
            ("negative precision", lambda m: m["per_class"]["negative"]["precision"]),
            ("negative F1", lambda m: m["per_class"]["negative"]["f1"]),
            ("accuracy @0.5", lambda m: m["at_0_5"]["accuracy"]),
            ("macro F1 @0.5", lambda m: m["at_0_5"]["macro_f1"]),
            ("ECE (15 bins)", lambda m: m.get("ece")), ("n", lambda m: m["n"])]
    rows = [[label, *(get(results[n]) for n in names)] for label, get in spec]
    return markdown(["metric", *names], rows)
