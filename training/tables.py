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
            ("ECE (15 bins)", lambda m: m.get("ece")),
            ("best neg. precision @ recall >= 0.90 (oracle threshold)",
             lambda m: m.get("oracle_precision_at_recall_0_90")),
            ("best neg. precision @ recall >= 0.95 (oracle threshold)",
             lambda m: m.get("oracle_precision_at_recall_0_95")),
            ("share negative where p_negative >= 0.9 (P1 band)",
             lambda m: (m.get("band_0_9") or {}).get("negative_share")),
            ("messages with p_negative >= 0.9", lambda m: (m.get("band_0_9") or {}).get("n")),
            ("n", lambda m: m["n"])]
    rows = [[label, *(get(results[n]) for n in names)] for label, get in spec]
    # rows no run has (older metrics files) are left out
    return markdown(["metric", *names], [r for r in rows if any(v is not None for v in r[1:])])


def _pretraining(config: dict[str, Any], info: dict[str, Any] | None) -> str:
    if not config.get("pretrain") or not info:
        return "-"
    return (f"{info['epochs']} ep., {info['texts']:,} texts, ppl {info['val_perplexity']:.1f}; "
            f"frozen {min(config['freeze_epochs'], config['epochs'])} ep.")


def _aux(config: dict[str, Any], extra: dict[str, Any]) -> str:
    if not config.get("aux"):
        return "-"
    heads = extra.get("aux_heads") or []
    folded = config.get("export_heads") or []
    return (f"{len(heads)} x {config.get('aux_weight', 0.5):g}"
            + (f"; exported: mean of main, {', '.join(folded)}" if folded else "; exported: main"))


def variants_table(result: dict[str, Any]) -> str:
    """``training.sentiment_variants`` JSON -> one row per variant, validation figures only."""
    headers = ["variant", "arch", "units", "pooling", "n-grams", "idf", "buckets", "wide start", "dropout",
               "LM pretraining", "aux heads x weight", "val ROC-AUC", "val AP",
               "val neg. precision @ recall 0.90", "epochs (best)", "train s"]
    rows = []
    for name, v in result["variants"].items():
        c = v["config"]
        wide = bool(c.get("ngrams"))
        rows.append([name, c["arch"], c["units"], c.get("pooling", "last"), c.get("ngrams") or "-",
                     ("yes" if c.get("wide_idf", False) else "no") if wide else "-",
                     c.get("ngram_buckets") if wide else "-",
                     ("LR" if c.get("wide_warm_start", False) else "zeros") if wide else "-",
                     c["dropout"], _pretraining(c, v.get("pretraining")), _aux(c, v), v["val_roc_auc"],
                     v["val_average_precision"],
                     v["val_neg_precision_at_recall"], f"{v['epochs']} ({v['best_epoch']})",
                     v["train_seconds"]])
    b = result["baseline"]
    rows.append(["TF-IDF 1-2-grams + LR (baseline)", "-", "-", "-", "1-2", "yes", "-", "-", "-", "-", "-",
                 b["val_roc_auc"], b["val_average_precision"], b["val_neg_precision_at_recall"], "-",
                 b["seconds"]])
    return markdown(headers, rows)


def folds_table(run: dict[str, Any]) -> str:
    """A ``--folds-only`` run: each fold's held-out ROC-AUC by epoch, then out-of-fold negative
    precision at each recall for the model and the baseline."""
    epochs = max(len(f["val_auc_by_epoch"]) for f in run["folds"])
    rows: list[list[Any]] = [[f"fold {f['fold']} ({f['negative']} negatives)", *f["val_auc_by_epoch"]]
                             for f in run["folds"]]
    mean = [sum(f["val_auc_by_epoch"][e] for f in run["folds"]) / len(run["folds"]) for e in range(epochs)]
    rows.append(["mean", *mean])
    by_epoch = markdown(["held-out ROC-AUC after epoch", *(str(e + 1) for e in range(epochs))], rows)
    targets = list(run["lstm"]["at_recall"])
    recall_rows = []
    for name, label in (("lstm", "model"), ("baseline", "TF-IDF + LR")):
        at = run[name]["at_recall"]
        recall_rows.append([label, at[targets[0]]["roc_auc"], at[targets[0]]["average_precision"],
                            *(at[t]["per_class"]["negative"]["precision"] for t in targets)])
    pooled = markdown(["out of fold", "ROC-AUC", "AP", *(f"precision @ recall {t}" for t in targets)],
                      recall_rows)
    return by_epoch + "\n\n" + pooled


def main(argv: list[str] | None = None) -> int:
    """``python -m training.tables METRICS.json ...``: Markdown tables of a sentiment run or variant
    search; ``--compare A.json B.json ...``: one table, the model and baseline columns of each run."""
    import json
    import sys
    from pathlib import Path

    args = list(argv if argv is not None else sys.argv[1:])
    if args and args[0] == "--folds":
        for path in args[1:]:
            print(f"<!-- rendered from {path} by python -m training.tables --folds -->")
            print(folds_table(json.loads(Path(path).read_text(encoding="utf-8"))))
        return 0
    if args and args[0] == "--compare":
        columns: dict[str, dict[str, Any]] = {}
        for path in args[1:]:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            columns[f"{Path(path).stem}: model"] = data["lstm"]
            columns[f"{Path(path).stem}: TF-IDF + LR"] = data["baseline"]
        print(f"<!-- rendered from {', '.join(args[1:])} by python -m training.tables --compare -->")
        print(sentiment_table(columns))
        return 0
    for path in args:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        print(f"<!-- rendered from {path} by python -m training.tables -->")
        if "variants" in data:
            print(variants_table(data))
        else:
            print(sentiment_table({"wide & deep LSTM": data["lstm"], "TF-IDF + LR": data["baseline"]}))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
