"""Sentiment variants compared on the validation part only (the test part is never scored here).

``python -m training.sentiment_variants --csv ... --variants wide_bilstm,lstm_ref --out v.json``
trains each named variant on the same seeded split and writes one JSON object with, per
variant: validation ROC-AUC and average precision, negative precision at the threshold that
gives 0.90 validation negative recall, validation ECE of the raw sigmoid, epochs and seconds.
The TF-IDF + LR baseline is scored the same way. Pick the release by these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS: dict[str, dict[str, Any]] = {
    "lstm_ref": {"arch": "lstm", "pooling": "last", "ngrams": 0},
    "lstm_pool": {"arch": "lstm", "pooling": "maxmean", "ngrams": 0},
    "bilstm_pool": {"arch": "bidirectional", "pooling": "maxmean", "ngrams": 0},
    "wide2_lstm_pool": {"arch": "lstm", "pooling": "maxmean", "ngrams": 2},
    "wide2_bilstm_pool": {"arch": "bidirectional", "pooling": "maxmean", "ngrams": 2},
    "wide3_bilstm_pool": {"arch": "bidirectional", "pooling": "maxmean", "ngrams": 3},
    "wide2_lstm_last": {"arch": "lstm", "pooling": "last", "ngrams": 2},
    "wide2_bilstm_pool_lr3e-3": {"arch": "bidirectional", "pooling": "maxmean", "ngrams": 2,
                                 "learning_rate": 3e-3},
    "wide2_bilstm_pool_l2": {"arch": "bidirectional", "pooling": "maxmean", "ngrams": 2, "wide_l2": 1e-5},
    "wide2_bilstm_pool_noemb": {"arch": "bidirectional", "pooling": "maxmean", "ngrams": 2,
                                "embeddings": None},
}
# The same with the wide branch started from a logistic regression on its own features (the
# default from here on); the ones above train it from zeros.
for _name in list(VARIANTS):
    if _name.startswith("wide"):
        VARIANTS[_name]["wide_warm_start"] = False
        VARIANTS["warm" + _name[4:]] = {**VARIANTS[_name], "wide_warm_start": True}
# From here on the wide branch weights n-grams by idf and hashes into 2^18 buckets
# (the logistic-regression-only check in docs/training.md: +0.004 validation AUC).
for _name in list(VARIANTS):
    VARIANTS[_name].setdefault("wide_idf", False)
    VARIANTS[_name].setdefault("ngram_buckets", 1 << 17)
VARIANTS["idf2_lstm_pool"] = {"arch": "lstm", "pooling": "maxmean", "ngrams": 2}
VARIANTS["idf2_lstm_pool_drop0.5"] = {"arch": "lstm", "pooling": "maxmean", "ngrams": 2, "dropout": 0.5}
VARIANTS["idf2_lstm_last"] = {"arch": "lstm", "pooling": "last", "ngrams": 2}
VARIANTS["idf2_lstm32_pool"] = {"arch": "lstm", "pooling": "maxmean", "ngrams": 2, "units": 32}
VARIANTS["idf2_bilstm_pool"] = {"arch": "bidirectional", "pooling": "maxmean", "ngrams": 2}
# Language-model pretraining of the embedding + LSTM on the --pretrain corpora, then one
# frozen epoch (training.pretrain); "lm" variants need --pretrain.
VARIANTS["lm_lstm32_pool"] = {**VARIANTS["idf2_lstm32_pool"], "pretrain": True}
VARIANTS["lm_lstm32_pool_nofreeze"] = {**VARIANTS["lm_lstm32_pool"], "freeze_epochs": 0}
VARIANTS["lm_lstm32_pool_frozen"] = {**VARIANTS["lm_lstm32_pool"], "freeze_epochs": 99}
VARIANTS["lm_lstm64_pool"] = {**VARIANTS["lm_lstm32_pool"], "units": 64}
VARIANTS["lm_lstm32_deep_only"] = {"arch": "lstm", "pooling": "maxmean", "ngrams": 0, "units": 32,
                                   "pretrain": True}
VARIANTS["lstm32_deep_only"] = {"arch": "lstm", "pooling": "maxmean", "ngrams": 0, "units": 32}
# Auxiliary heads on the finer targets the file has (cumulative ratings; with --aux-flag-col a
# flag such as "not recommended"), the rating-3 rows added to training for those heads only.
VARIANTS["aux_lstm_pool"] = {**VARIANTS["idf2_lstm_pool"], "aux": True}
VARIANTS["aux_lstm32_pool"] = {**VARIANTS["idf2_lstm32_pool"], "aux": True}
VARIANTS["aux_lstm_pool_w1"] = {**VARIANTS["aux_lstm_pool"], "aux_weight": 1.0}
VARIANTS["aux_lstm_pool_w0.25"] = {**VARIANTS["aux_lstm_pool"], "aux_weight": 0.25}
VARIANTS["aux_lstm32_pool_e8"] = {**VARIANTS["aux_lstm32_pool"], "epochs": 8}
# The exported score is the mean of the rating-cut logits around the label's (fold_heads).
VARIANTS["aux_lstm32_pool_cuts123"] = {**VARIANTS["aux_lstm32_pool"],
                                       "export_heads": ("Rating <= 1", "Rating <= 3")}


def validation_figures(y: Any, p: Any, target: float) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from export.calibration import expected_calibration_error
    from training.metrics import classification_metrics, threshold_for_recall

    t = threshold_for_recall(y, p, target)
    m = classification_metrics(y, p, t)
    return {"val_roc_auc": float(roc_auc_score(y, p)),
            "val_average_precision": float(average_precision_score(y, p)),
            "val_neg_precision_at_recall": m["per_class"]["negative"]["precision"],
            "val_neg_recall": m["per_class"]["negative"]["recall"], "val_macro_f1": m["macro_f1"],
            "val_ece_raw": expected_calibration_error(y, p)}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training import sentiment
    from training.commands import _embeddings
    from training.release import _jsonable
    from training.reviews import LabelRule, read_aux_targets, read_reviews

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--text-col", action="append", required=True)
    ap.add_argument("--label-col", required=True)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--embeddings")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--pretrain", action="append", default=[], metavar="CSV[:COLS]",
                    help="unlabelled corpus for the lm_* variants (repeatable)")
    ap.add_argument("--pretrain-epochs", type=int, default=3)
    ap.add_argument("--pretrain-max-texts", type=int, default=0)
    ap.add_argument("--aux-flag-col",
                    help="a 0/1 column whose 0 is an auxiliary negative target (aux_* variants)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", required=True, help="JSON file; existing variants in it are kept")
    args = ap.parse_args(argv)

    cols = [c for spec in args.text_col for c in spec.split(",")]
    rule = LabelRule(4.0, 2.0)
    data = read_reviews(Path(args.csv), cols, args.label_col, rule, args.limit, args.seed)
    out_path = Path(args.out)
    result: dict[str, Any] = json.loads(out_path.read_text()) if out_path.is_file() else {"variants": {}}
    base_cfg = sentiment.SentimentConfig(max_len=args.max_len, epochs=args.epochs, patience=args.patience,
                                         seed=args.seed, embeddings=args.embeddings,
                                         batch_size=args.batch_size)
    if "baseline" not in result:
        prep = sentiment.prepare(data, base_cfg)
        predict, info = sentiment.tfidf_baseline(prep, args.seed)
        result["baseline"] = {**validation_figures(prep.parts["val"].labels, predict(prep.parts["val"].texts),
                                                   base_cfg.target_recall), **info}
        result["data"] = data.description
    for name in args.variants.split(","):
        spec = dict(VARIANTS[name])
        if spec.pop("pretrain", False):
            if not args.pretrain:
                ap.error(f"{name} needs --pretrain")
            spec.update(pretrain=tuple(args.pretrain), pretrain_epochs=args.pretrain_epochs,
                        pretrain_max_texts=args.pretrain_max_texts)
        cfg = replace(base_cfg, **spec)
        if cfg.aux:
            cfg = replace(cfg, aux_flag_col=args.aux_flag_col)
            aux = read_aux_targets(Path(args.csv), cols, args.label_col, rule, cfg.aux_flag_col,
                                   args.limit, args.seed)
        prep = sentiment.prepare(data, cfg, aux if cfg.aux else None)
        cfg, matrix, coverage = _embeddings(cfg, prep)
        t0 = time.perf_counter()
        fitted = sentiment.fit(cfg, prep, matrix)
        p_val = np.asarray(fitted.model.predict(prep.encoded["val"], batch_size=512, verbose=0),
                           np.float64).reshape(-1)
        row = {**validation_figures(prep.parts["val"].labels, p_val, cfg.target_recall),
               "epochs": len(fitted.history["loss"]), "best_epoch": fitted.best_epoch,
               "val_auc_by_epoch": fitted.history["val_auc"],
               "train_seconds": round(time.perf_counter() - t0, 1),
               "params": int(fitted.model.count_params()), **fitted.extra,
               "config": asdict(cfg)}
        result["variants"][name] = _jsonable(row)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(_jsonable(result), indent=1) + "\n", encoding="utf-8")
        print(f"{name}: val AUC {row['val_roc_auc']:.4f} AP {row['val_average_precision']:.4f} "
              f"neg prec@rec0.9 {row['val_neg_precision_at_recall']:.3f} epochs {row['epochs']} "
              f"(best {row['best_epoch']}) {row['train_seconds']} s", flush=True)
    b = result["baseline"]
    print(f"baseline: val AUC {b['val_roc_auc']:.4f} AP {b['val_average_precision']:.4f} "
          f"neg prec@rec0.9 {b['val_neg_precision_at_recall']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
