"""Would an ensemble of the released recipe beat one model? Validation part only.

    PYTHONPATH=. python scripts/sentiment_ensemble_check.py --seeds 42,7,11,3,5 --json FILE
    python scripts/sentiment_ensemble_check.py --render FILE

The released recipe (``aux_lstm32_pool_cuts123``) is trained once per model seed on the
release split (seed 42); every model's exported logit is scored on validation alone, then
the mean logit of the first k models (k = 2 .. n). Each row: ROC-AUC, AP and negative
precision where the threshold gives recall 0.90, 0.92 and 0.95 (how much precision a
safety margin on recall costs). The test part is never scored here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_meta import emit, run_meta  # noqa: E402

ECOM = Path("../shared/data/reviews/womens_clothing_ecommerce_reviews.csv.gz")
RECALLS = (0.90, 0.92, 0.95)


def figures(y: Any, logit: Any) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from training.metrics import classification_metrics, threshold_for_recall

    p = 1.0 / (1.0 + np.exp(-logit))
    out = {"roc_auc": float(roc_auc_score(y, p)), "ap": float(average_precision_score(y, p))}
    for r in RECALLS:
        m = classification_metrics(y, p, threshold_for_recall(y, p, r))
        out[f"precision@{r:.2f}"] = float(m["per_class"]["negative"]["precision"])
    return {k: round(v, 4) for k, v in out.items()}


def released_recipe() -> tuple[Any, Any, Any]:
    """The release's labelled reviews, auxiliary targets and config (``aux_lstm32_pool_cuts123``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training import sentiment
    from training.reviews import LabelRule, read_aux_targets, read_reviews
    from training.sentiment_variants import VARIANTS

    cols = ["Title", "Review Text"]
    data = read_reviews(ECOM, cols, "Rating", LabelRule())
    aux = read_aux_targets(ECOM, cols, "Rating", LabelRule(), "Recommended IND")
    cfg = replace(sentiment.SentimentConfig(max_len=128, epochs=5, patience=2, seed=42,
                                            embeddings=".sentinel/imdb_ppmi_100d.txt",
                                            aux_flag_col="Recommended IND"),
                  **VARIANTS["aux_lstm32_pool_cuts123"])
    return data, aux, cfg


def table(comment: str, rows: dict[str, dict[str, float]]) -> str:
    """The validation table both checks render: one row per model, ``figures``' columns."""
    keys = ["roc_auc", "ap", *[f"precision@{r:.2f}" for r in RECALLS]]
    lines = [comment,
             "| model (validation) | ROC-AUC | AP | neg. precision @ recall 0.90 | @ 0.92 | @ 0.95 |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | " + " | ".join(f"{f[k]:.4f}" for k in keys) + " |" for name, f in rows.items()]
    return "\n".join(lines)


def run(seeds: list[int]) -> dict[str, Any]:
    from training import sentiment
    from training.commands import _embeddings

    data, aux, cfg = released_recipe()
    prep = sentiment.prepare(data, cfg, aux)
    cfg, matrix, _ = _embeddings(cfg, prep)
    y = prep.parts["val"].labels
    logits: list[Any] = []
    single: dict[str, Any] = {}
    for seed in seeds:
        fitted = sentiment.fit(replace(cfg, seed=seed), prep, matrix)
        p = np.asarray(fitted.model.predict(prep.encoded["val"], batch_size=512, verbose=0)).ravel()
        p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
        logits.append(np.log(p / (1 - p)))
        single[f"seed {seed}"] = figures(y, logits[-1])
        print(seed, single[f"seed {seed}"], flush=True)
    ensembles = {f"mean of first {k}": figures(y, np.mean(logits[:k], axis=0))
                 for k in range(2, len(seeds) + 1)}
    mean_single = {k: round(float(np.mean([s[k] for s in single.values()])), 4)
                   for k in next(iter(single.values()))}
    return {"single": single, "single, mean over seeds": mean_single, "ensembles": ensembles,
            "n_val": int(len(y)), "val_negatives": int(y.sum())}


def render(path: str) -> str:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = {**data["single"], "single, mean over seeds": data["single, mean over seeds"], **data["ensembles"]}
    return table(f"<!-- rendered from {path} by python scripts/sentiment_ensemble_check.py --render -->",
                 rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--render", metavar="JSON")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--seeds", default="42,7,11,3,5")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    report = {"meta": run_meta("scripts/sentiment_ensemble_check.py", sys.argv[1:]),
              **run([int(s) for s in args.seeds.split(",")])}
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
