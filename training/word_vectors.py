"""Word vectors from an unlabelled corpus (PPMI + truncated SVD), written in GloVe text format.

No GloVe download is reachable offline, so this makes "pre-trained" vectors from a
corpus we have (e.g. the IMDB reviews, a different domain than the product's feedback)
for ``sentinel train sentiment --embeddings``. Count-based PPMI-SVD vectors are close
to GloVe/word2vec in quality at this scale (Levy, Goldberg & Dagan, TACL 2015).

    python -m training.word_vectors --csv REVIEWS.csv.gz --text-col review --out vectors.txt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.tokenizer import OOV_ID, Tokenizer, build_vocab


def cooccurrence(rows: Sequence[list[int]], size: int, window: int = 5) -> Any:
    """Symmetric word-word counts within ``window``, weighted 1/distance (as GloVe does)."""
    from scipy import sparse

    total = sparse.csr_matrix((size, size), dtype=np.float64)
    for start in range(0, len(rows), 2000):
        a, b, w = [], [], []
        for ids in rows[start:start + 2000]:
            arr = np.asarray([i for i in ids if i > OOV_ID], dtype=np.int64)
            for d in range(1, window + 1):
                if len(arr) > d:
                    a += [arr[:-d], arr[d:]]
                    b += [arr[d:], arr[:-d]]
                    w.append(np.full(2 * (len(arr) - d), 1.0 / d))
        if a:
            total = total + sparse.coo_matrix((np.concatenate(w), (np.concatenate(a), np.concatenate(b))),
                                              shape=(size, size)).tocsr()
    return total


def ppmi_svd(counts: Any, dim: int = 100, alpha: float = 0.75) -> npt.NDArray[np.float32]:
    """Positive PMI with context-distribution smoothing, then ``U * sqrt(S)`` of a rank-``dim`` SVD."""
    from scipy.sparse.linalg import svds

    coo = counts.tocoo()
    row = np.asarray(counts.sum(axis=1)).reshape(-1)
    col = np.asarray(counts.sum(axis=0)).reshape(-1) ** alpha
    pmi = np.log(coo.data * col.sum() / (row[coo.row] * col[coo.col]))
    keep = pmi > 0
    from scipy import sparse

    ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)
    u, s, _ = svds(ppmi, k=dim, random_state=0)
    vectors = u[:, ::-1] * np.sqrt(s[::-1])
    return (vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-8)).astype(np.float32)


def write_glove(path: Path, words: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for word, vec in zip(words, vectors, strict=True):
            fh.write(word + " " + " ".join(f"{v:.5f}" for v in vec) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    from training.reviews import split_columns

    p = argparse.ArgumentParser(prog="python -m training.word_vectors", description=__doc__.split("\n")[0])
    p.add_argument("--csv", required=True, type=Path)
    p.add_argument("--text-col", action="append", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--vocab-size", type=int, default=30000)
    p.add_argument("--window", type=int, default=5)
    args = p.parse_args(argv)
    import pandas as pd

    frame = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    texts = frame[split_columns(args.text_col)].agg(" ".join, axis=1).tolist()
    vocab = build_vocab(texts, max_size=args.vocab_size, min_count=5)
    tok = Tokenizer(vocab)
    vectors = ppmi_svd(cooccurrence([tok.ids(t) for t in texts], len(vocab), args.window), args.dim)
    write_glove(args.out, vocab[2:], vectors[2:])
    print(f"wrote {len(vocab) - 2} vectors of dim {args.dim} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
