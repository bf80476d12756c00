"""How far can n-gram features alone go? The bag-of-words ceiling behind docs/training.md.

    PYTHONPATH=. python scripts/sentiment_bow_check.py --json docs/results/sentiment-bow-check.json

E-commerce reviews: 5-fold cross-validation on the train + validation parts of the release
split (the test part is never read), logistic regression (class-balanced) on several feature
sets, each at C in {2, 8, 32}: pooled out-of-fold ROC-AUC and the best negative precision at
recall >= 0.90. Then, on the release split's validation part only: the wide layer's own
features with idf or Naive-Bayes log-count ratios as the feature scale. IMDB: TF-IDF
1-2-grams with and without NB ratios on the validation part (the NBSVM idea).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ECOM = Path("../shared/data/reviews/womens_clothing_ecommerce_reviews.csv.gz")
IMDB = Path("../shared/data/reviews/imdb_50k_reviews.csv.gz")
SEED = 42


def _prec90(y: Any, p: Any) -> float:
    from sklearn.metrics import precision_recall_curve

    prec, rec, _ = precision_recall_curve(y, p)
    return float(prec[rec >= 0.90].max())


def _lr(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=3000)


def _vectorizers(name: str, tokens: Any) -> list[Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = {"w12": (1, 2), "w13": (1, 3)}
    out = []
    for part in name.split("+"):
        if part in words:
            out.append(TfidfVectorizer(tokenizer=tokens, lowercase=False, token_pattern=None,
                                       ngram_range=words[part], min_df=2, sublinear_tf=True))
        elif part == "c25":
            out.append(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))
    return out


def _features(name: str, tokens: Any, train: list[str], test: list[str], y: Any) -> tuple[Any, Any]:
    from scipy.sparse import hstack

    vs = _vectorizers(name.removeprefix("nb:"), tokens)
    x_tr = hstack([v.fit_transform(train) for v in vs]).tocsr()
    x_te = hstack([v.transform(test) for v in vs]).tocsr()
    if name.startswith("nb:"):
        from training.sentiment import nb_ratio

        r = nb_ratio(x_tr, y)  # |ratio|: a column's sign does not change a regularised fit
        x_tr, x_te = x_tr.multiply(r).tocsr(), x_te.multiply(r).tocsr()
    return x_tr, x_te


def ecommerce_cv(sets: list[str]) -> list[dict[str, Any]]:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from export.tokenizer import Tokenizer, build_vocab
    from training.reviews import read_reviews, stratified_split

    data = read_reviews(ECOM, ["Title", "Review Text"], "Rating")
    idx = stratified_split(data.labels, (0.70, 0.15, 0.15), SEED)
    dev = np.concatenate([idx["train"], idx["val"]])
    texts, y = [data.texts[i] for i in dev], data.labels[dev]
    tok = Tokenizer(build_vocab(texts, max_size=20000, min_count=2), max_len=128)
    rows = []
    for name in sets:
        for c in (2.0, 8.0, 32.0):
            t0, oof = time.perf_counter(), np.zeros(len(y))
            for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(texts, y):
                x_tr, x_te = _features(name, tok.tokens, [texts[i] for i in tr], [texts[i] for i in te],
                                       y[tr])
                oof[te] = _lr(c).fit(x_tr, y[tr]).decision_function(x_te)
            rows.append({"features": name, "C": c, "oof_roc_auc": float(roc_auc_score(y, oof)),
                         "oof_best_precision_at_recall_0_90": _prec90(y, oof),
                         "seconds": round(time.perf_counter() - t0, 1), "rows": int(len(y))})
            print(rows[-1], flush=True)
    return rows


def wide_layer_scale() -> list[dict[str, Any]]:
    from sklearn.metrics import roc_auc_score

    from training import sentiment as s
    from training.reviews import read_reviews

    data = read_reviews(ECOM, ["Title", "Review Text"], "Rating")
    prep = s.prepare(data, s.SentimentConfig(max_len=128, ngrams=2, seed=SEED))
    hasher, start = prep.tokenizer.ngrams, prep.tokenizer.max_len
    assert hasher is not None
    f_tr, f_va = prep.encoded["train"][:, start:], prep.encoded["val"][:, start:]
    y_tr, y_va = prep.parts["train"].labels, prep.parts["val"].labels
    idf = s.wide_idf(f_tr, hasher.n_features)
    r = s.nb_ratio(s.wide_matrix(f_tr, np.ones(hasher.n_features, np.float32)), y_tr)
    rows = []
    for name, scale in (("idf", idf), ("|nb ratio|", np.abs(r)), ("idf * |nb ratio|", idf * np.abs(r))):
        x_tr, x_va = (s.wide_matrix(f, scale.astype(np.float32)) for f in (f_tr, f_va))
        for c in (1.0, 4.0, 16.0):
            p = _lr(c).fit(x_tr, y_tr).decision_function(x_va)
            rows.append({"scale": name, "C": c, "val_roc_auc": float(roc_auc_score(y_va, p)),
                         "val_best_precision_at_recall_0_90": _prec90(y_va, p)})
            print(rows[-1], flush=True)
    return rows


def imdb_nb() -> list[dict[str, Any]]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    from export.tokenizer import Tokenizer, build_vocab
    from training.reviews import read_reviews, stratified_split

    data = read_reviews(IMDB, ["review"], "label")
    idx = stratified_split(data.labels, (0.70, 0.15, 0.15), SEED)
    tr, va = ([data.texts[i] for i in idx[k]] for k in ("train", "val"))
    y_tr, y_va = data.labels[idx["train"]], data.labels[idx["val"]]
    tok = Tokenizer(build_vocab(tr, max_size=20000, min_count=2), max_len=128)
    rows = []
    for name in ("w12", "nb:w12"):
        x_tr, x_va = _features(name, tok.tokens, tr, va, y_tr)
        for c in (16.0, 64.0):
            p = _lr(c).fit(x_tr, y_tr).decision_function(x_va)
            rows.append({"features": name, "C": c, "val_roc_auc": float(roc_auc_score(y_va, p)),
                         "val_accuracy": float(accuracy_score(y_va, p > 0))})
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out = {"meta": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
                    "command": "PYTHONPATH=. python scripts/sentiment_bow_check.py"},
           "ecommerce_cv": ecommerce_cv(["w12", "w13", "nb:w12", "c25", "w12+c25"]),
           "wide_layer_scale": wide_layer_scale(), "imdb_nb": imdb_nb()}
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
