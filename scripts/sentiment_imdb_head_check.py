"""Does an IMDB sentiment head beside the rating heads help the released recipe? Validation only.

    PYTHONPATH=. python scripts/sentiment_imdb_head_check.py --rows 10000,25000 --seeds 42,7,11 --json FILE
    python scripts/sentiment_imdb_head_check.py --render FILE [--against ENSEMBLE_JSON]

Supervised transfer instead of language-model pretraining: ``--rows`` IMDB reviews (sampled
with a fixed seed from ``../shared``'s IMDB file, which holds no e-commerce text) join the
training part with one more auxiliary head, "IMDB label negative"; every other target of
theirs is unknown (masked), as the rating-3 rows' main target is. The e-commerce split,
vocabulary, validation and test rows are those of the release. The IMDB head is not exported.
Each row: the exported logit on validation, ROC-AUC, AP and negative precision at recall
0.90, 0.92 and 0.95. The test part is never scored here. ``--against`` renders the same
seeds without the head from ``scripts/sentiment_ensemble_check.py``'s JSON beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_meta import emit, run_meta  # noqa: E402
from sentiment_ensemble_check import figures, released_recipe, table  # noqa: E402

IMDB = Path("../shared/data/reviews/imdb_50k_reviews.csv.gz")
HEAD = "IMDB label negative"


def with_imdb(aux: Any, rows: int, sample_seed: int = 0) -> Any:
    """``aux`` plus ``rows`` IMDB reviews that carry the new head's target only."""
    import pandas as pd

    from training.reviews import AuxTargets

    imdb = pd.read_csv(IMDB).sample(n=rows, random_state=sample_seed)
    texts = imdb["review"].astype(str).str.replace("<br />", " ", regex=False).tolist()
    k = len(aux.names)
    unknown = np.full((len(aux.labelled), 1), np.nan, np.float32)
    extra = np.full((rows, k + 1), np.nan, np.float32)
    extra[:, k] = (imdb["label"] == "neg").to_numpy(np.float32)
    between = np.column_stack([aux.between, np.full(len(aux.between), np.nan, np.float32)])
    return AuxTargets((*aux.names, HEAD), np.hstack([aux.labelled, unknown]), aux.between_texts + texts,
                      np.concatenate([between, extra]))


def run(rows: list[int], seeds: list[int]) -> dict[str, Any]:
    from training import sentiment
    from training.commands import _embeddings

    data, base_aux, cfg = released_recipe()
    out: dict[str, Any] = {}
    for n in rows:
        prep = sentiment.prepare(data, cfg, with_imdb(base_aux, n))
        cfg_n, matrix, _ = _embeddings(cfg, prep)
        y = prep.parts["val"].labels
        for seed in seeds:
            fitted = sentiment.fit(replace(cfg_n, seed=seed), prep, matrix)
            p = np.asarray(fitted.model.predict(prep.encoded["val"], batch_size=512, verbose=0)).ravel()
            p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
            row = {**figures(y, np.log(p / (1 - p))), "best_epoch": fitted.best_epoch,
                   "epochs": len(fitted.history.get("val_auc", [])), "train_s": round(fitted.seconds, 1)}
            out[f"{n} IMDB rows, seed {seed}"] = row
            print(n, seed, row, flush=True)
    return {"rows": out, "n_val": int(len(y)), "val_negatives": int(y.sum())}


def render(path: str, against: str | None) -> str:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = dict(data["rows"])
    if against:
        single = json.loads(Path(against).read_text(encoding="utf-8"))["single"]
        seeds = list(dict.fromkeys(name.rsplit(" ", 1)[1] for name in rows))
        before = {f"no IMDB head, seed {s}": single[f"seed {s}"] for s in seeds if f"seed {s}" in single}
        rows = {**before, **rows}
    comment = (f"<!-- rendered from {path} by python scripts/sentiment_imdb_head_check.py --render"
               + (f" --against {against}" if against else "") + " -->")
    return table(comment, rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--render", metavar="JSON")
    ap.add_argument("--against", metavar="ENSEMBLE_JSON")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rows", default="10000,25000")
    ap.add_argument("--seeds", default="42,7,11")
    args = ap.parse_args()
    if args.render:
        print(render(args.render, args.against))
        return 0
    report = {"meta": run_meta("scripts/sentiment_imdb_head_check.py", sys.argv[1:]),
              **run([int(r) for r in args.rows.split(",")], [int(s) for s in args.seeds.split(",")])}
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
