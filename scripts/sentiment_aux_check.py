"""Do finer targets than the binary label help, and which heads should the export average?

    PYTHONPATH=. python scripts/sentiment_aux_check.py --json docs/results/sentiment-aux-check.json
    python scripts/sentiment_aux_check.py --render docs/results/sentiment-aux-check.json

Validation part of the release split only (the test part is never scored here).

- ``bow``: TF-IDF 1-2-grams + class-balanced logistic regression (C 4) on the binary label;
  the sum of the decision functions of cumulative regressions ``rating <= k`` (k = 1..4,
  the k = 2 one counted twice), trained with the rating-3 rows; one regression on
  "not recommended". The question: is there information in the ratings and the flag that
  the binary label throws away?
- ``heads``: the released recipe with auxiliary heads (``aux_lstm32_pool``), trained once
  per model seed (the split stays seed 42); validation figures of every head's logit and of
  the averages ``training.sentiment.fold_heads`` can export.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ECOM = Path("../shared/data/reviews/womens_clothing_ecommerce_reviews.csv.gz")
COLS = ["Title", "Review Text"]
FLAG = "Recommended IND"
SPLIT_SEED = 42
# exported-score candidates: indices into (main, *aux names) of read_aux_targets
COMBOS = {"main": (0,), "mean of Rating <= 1, main, Rating <= 3": (0, 1, 2),
          "mean of main, Rating <= 3": (0, 2), "mean of main, not recommended": (0, 4),
          "mean of Rating <= 1, main, Rating <= 3, not recommended": (0, 1, 2, 4),
          "mean of all five heads": (0, 1, 2, 3, 4)}


def _figures(y: Any, score: Any) -> dict[str, float]:
    from training.sentiment_variants import validation_figures

    r = validation_figures(y, score, 0.90)
    return {k: round(float(r[k]), 4) for k in ("val_roc_auc", "val_average_precision",
                                               "val_neg_precision_at_recall")}


def _data() -> tuple[Any, Any, dict[str, Any]]:
    from training.reviews import LabelRule, read_aux_targets, read_reviews, stratified_split

    data = read_reviews(ECOM, COLS, "Rating", LabelRule())
    aux = read_aux_targets(ECOM, COLS, "Rating", LabelRule(), FLAG)
    return data, aux, stratified_split(data.labels, (0.70, 0.15, 0.15), SPLIT_SEED)


def bow() -> dict[str, Any]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from export.tokenizer import Tokenizer, build_vocab

    data, aux, idx = _data()
    train = [data.texts[i] for i in idx["train"]]
    val = [data.texts[i] for i in idx["val"]]
    y_tr, y_va = data.labels[idx["train"]], data.labels[idx["val"]]
    tok = Tokenizer(build_vocab(train, max_size=20000, min_count=2), max_len=128)
    vec = TfidfVectorizer(tokenizer=tok.tokens, lowercase=False, token_pattern=None, ngram_range=(1, 2),
                          min_df=2, sublinear_tf=True)
    x_tr, x_va = vec.fit_transform(train), vec.transform(val)
    x_all = sparse.vstack([x_tr, vec.transform(aux.between_texts)]).tocsr()
    # rating <= k for labelled rows from the binary label and the aux cuts; rating-3 rows: 0, 1, 1, 0
    cuts = {1: aux.labelled[idx["train"], 0], 2: y_tr, 3: aux.labelled[idx["train"], 1],
            4: aux.labelled[idx["train"], 2]}
    between = {1: 0.0, 2: 0.0, 3: 1.0, 4: 1.0}

    def lr(x: Any, y: Any) -> Any:
        return LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000).fit(x, y)

    out = {"binary": _figures(y_va, lr(x_tr, y_tr).decision_function(x_va))}
    total = np.zeros(len(y_va))
    for k, y in cuts.items():
        y_all = np.concatenate([y, np.full(len(aux.between_texts), between[k])]).astype(int)
        total += lr(x_all, y_all).decision_function(x_va) * (2.0 if k == 2 else 1.0)
    out["cumulative ratings, summed (with rating-3 rows)"] = _figures(y_va, total)
    flag = aux.labelled[idx["train"], 3]
    known = ~np.isnan(flag)
    out["not recommended"] = _figures(y_va, lr(x_tr[known], flag[known].astype(int)).decision_function(x_va))
    return out


def heads(seeds: list[int]) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training import sentiment
    from training.commands import _embeddings
    from training.sentiment_variants import VARIANTS

    data, aux, _ = _data()
    cfg = replace(sentiment.SentimentConfig(max_len=128, epochs=5, patience=2, seed=SPLIT_SEED,
                                            embeddings=".sentinel/imdb_ppmi_100d.txt", aux_flag_col=FLAG),
                  **VARIANTS["aux_lstm32_pool"])
    prep = sentiment.prepare(data, cfg, aux)
    cfg, matrix, _ = _embeddings(cfg, prep)
    y_va = prep.parts["val"].labels
    names = ["main", *aux.names]
    out: dict[str, Any] = {"heads": names}
    for seed in seeds:
        fitted = sentiment.fit(replace(cfg, seed=seed), prep, matrix)
        z = np.asarray(fitted.training_model.predict(prep.encoded["val"], batch_size=512, verbose=0))
        row = {f"head {n}": _figures(y_va, z[:, i]) for i, n in enumerate(names)}
        row.update({name: _figures(y_va, z[:, list(cols)].mean(axis=1)) for name, cols in COMBOS.items()})
        out[f"seed {seed}"] = row
        print(seed, json.dumps(row), flush=True)
    return out


def render(path: str) -> str:
    """Markdown tables of a written JSON: ROC-AUC / AP / precision at recall 0.90 per cell."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))

    def cell(f: dict[str, float]) -> str:
        return (f"{f['val_roc_auc']:.4f} / {f['val_average_precision']:.3f} / "
                f"{f['val_neg_precision_at_recall']:.3f}")

    lines = [f"<!-- rendered from {path} by python scripts/sentiment_aux_check.py --render -->",
             "| TF-IDF 1-2-grams + LR, target | val ROC-AUC / AP / precision @ recall 0.90 |", "|---|---|"]
    lines += [f"| {name} | {cell(f)} |" for name, f in data["bow"].items()]
    seeds = [k for k in data["heads"] if k.startswith("seed ")]
    lines += ["", "| LSTM(32) + aux heads, exported logit | " + " | ".join(seeds) + " |",
              "|---|" + "---|" * len(seeds)]
    rows = [k for k in data["heads"][seeds[0]]]
    lines += [f"| {row} | " + " | ".join(cell(data["heads"][s][row]) for s in seeds) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--render", metavar="JSON", help="print the tables of a written JSON and exit")
    ap.add_argument("--json")
    ap.add_argument("--seeds", default="42,7", help="model seeds for the heads part (split: 42)")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    if not args.json:
        ap.error("--json FILE is needed to run the check")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out = {"meta": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
                    "command": "PYTHONPATH=. python scripts/sentiment_aux_check.py",
                    "split_seed": SPLIT_SEED},
           "bow": bow(), "heads": heads([int(s) for s in args.seeds.split(",")])}
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
