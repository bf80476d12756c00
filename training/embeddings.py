"""Pre-trained word vectors from a GloVe-format text file (``word v1 v2 ...`` per line).

Only vocabulary words are kept, so a multi-GB file is streamed, never held in memory.
Words the file lacks get small random vectors; ``<pad>`` gets zeros.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from export.tokenizer import PAD_ID
from training.errors import DataError

logger = logging.getLogger(__name__)


def _open(path: Path):  # type: ignore[no-untyped-def]
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def load_glove(path: Path, vocab: Sequence[str], seed: int = 0) -> tuple[npt.NDArray[np.float32], float]:
    """Embedding matrix ``[len(vocab), dim]`` and the fraction of vocabulary words found."""
    if not path.is_file():
        raise DataError(f"no such embeddings file: {path}")
    index = {w: i for i, w in enumerate(vocab)}
    found: dict[int, npt.NDArray[np.float32]] = {}
    dim = 0
    with _open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.rstrip().split(" ")
            if len(parts) < 3 and lineno == 1:
                continue  # word2vec-style header "count dim"
            dim = dim or len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(f"{path}:{lineno}: expected {dim} values, got {len(parts) - 1}")
            i = index.get(parts[0])
            if i is not None and i not in found:
                found[i] = np.asarray(parts[1:], dtype=np.float32)
    if not dim:
        raise DataError(f"{path}: no vectors")
    return _matrix(found, len(vocab), dim, seed), len(found) / max(1, len(vocab) - 2)


def _matrix(found: dict[int, npt.NDArray[np.float32]], size: int, dim: int,
            seed: int) -> npt.NDArray[np.float32]:
    vectors = np.stack(list(found.values())) if found else np.zeros((1, dim), np.float32)
    scale = float(vectors.std()) or 0.1
    matrix = np.random.default_rng(seed).normal(0.0, scale, (size, dim)).astype(np.float32)
    for i, vec in found.items():
        matrix[i] = vec
    matrix[PAD_ID] = 0.0
    return matrix
