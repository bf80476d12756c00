"""The one text tokeniser, used by training and by the worker (pure Python + numpy).

Its parameters and vocabulary are stored beside the model, so serving tokenises
exactly as training did.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

TOKENIZER_ID = "word_lower_v1"
# The same words, plus hashed word n-grams for the model's linear ("wide") branch.
NGRAM_TOKENIZER_ID = "word_lower_ngram_hash_v1"
TOKENIZER_IDS = (TOKENIZER_ID, NGRAM_TOKENIZER_ID)
TOKEN_PATTERN = r"[a-z0-9]+(?:'[a-z]+)?"
PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


# 64-bit mixing constants (splitmix64 / golden ratio); numpy uint64 arithmetic wraps.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class NgramHasher:
    """Word n-gram features for a linear branch, from token ids (numpy, vectorised).

    Unigrams keep their vocabulary id (feature ``id`` in ``[2, vocab_size)``; <oov> is 1);
    n-grams with 2 <= n <= ``max_n`` are hashed from their ids into
    ``[vocab_size, vocab_size + buckets)``. Feature 0 is padding. Only the last ``window``
    tokens are used (the same left truncation as the sequence input). The hash is a fixed
    splitmix64-style mix of the ids, so training and serving agree across processes
    (Python's ``hash`` is salted per process and would not).
    """

    vocab_size: int
    buckets: int = 1 << 17
    max_n: int = 2
    window: int = 128

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.buckets < 1 or self.max_n < 1 or self.window < self.max_n:
            raise ValueError(f"invalid n-gram hasher {self}")

    @property
    def width(self) -> int:
        """Feature columns per text: ``window - n + 1`` for each n in 1..max_n."""
        return sum(self.window - n + 1 for n in range(1, self.max_n + 1))

    @property
    def n_features(self) -> int:
        return self.vocab_size + self.buckets

    def features(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``[batch, window]`` left-padded ids -> ``[batch, width]`` feature ids (0 = padding)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 2 or ids.shape[1] != self.window:
            raise ValueError(f"expected ids of shape [batch, {self.window}], got {ids.shape}")
        cols = [ids]
        u = ids.astype(np.uint64)
        for n in range(2, self.max_n + 1):
            span = self.window - n + 1
            h = np.full((len(ids), span), n, dtype=np.uint64) * _GOLDEN
            real = np.ones((len(ids), span), dtype=bool)
            for k in range(n):
                part = u[:, k:k + span]
                h = (h ^ part) * _MIX1
                h ^= h >> np.uint64(31)
                real &= part != 0
            h = (h * _MIX2) ^ (h >> np.uint64(29))
            bucket = (h % np.uint64(self.buckets)).astype(np.int64) + self.vocab_size
            cols.append(np.where(real, bucket, 0))
        return np.concatenate(cols, axis=1) if len(cols) > 1 else ids.copy()

    def params(self) -> dict[str, object]:
        return {"hash": "splitmix64_ids_v1", "vocab_size": self.vocab_size, "buckets": self.buckets,
                "max_n": self.max_n, "window": self.window, "width": self.width,
                "n_features": self.n_features}


@dataclass(frozen=True)
class Tokenizer:
    """Lower-case word tokeniser with a fixed vocabulary.

    Padding and truncation are both on the left ("pre", as Keras' defaults): the
    LSTM's final state then sits on the last real tokens. With ``ngrams``, each row is
    ``max_len`` token ids followed by ``ngrams.width`` n-gram feature ids (one int64
    tensor, so the model keeps a single input).
    """

    vocab: Sequence[str]
    max_len: int = 200
    pattern: str = TOKEN_PATTERN
    ngrams: NgramHasher | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.vocab) < 2 or self.vocab[PAD_ID] != PAD_TOKEN or self.vocab[OOV_ID] != OOV_TOKEN:
            raise ValueError("vocabulary must start with <pad>, <oov>")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.vocab)})
        object.__setattr__(self, "_regex", re.compile(self.pattern))
        if self.ngrams is not None and self.ngrams.vocab_size != len(self.vocab):
            raise ValueError("n-gram hasher vocab_size differs from the vocabulary")

    @property
    def width(self) -> int:
        """Columns of :meth:`encode`'s output."""
        return self.max_len + (self.ngrams.width if self.ngrams else 0)

    def tokens(self, text: str) -> list[str]:
        return self._regex.findall(_HTML_BREAK.sub(" ", text).lower())

    def ids(self, text: str) -> list[int]:
        get = self._index.get
        return [get(t, OOV_ID) for t in self.tokens(text)]

    def encode(self, texts: Iterable[str]) -> npt.NDArray[np.int64]:
        """Texts to an int64 ``[batch, width]`` array, left-padded and left-truncated.

        ``width`` is ``max_len``, plus the n-gram features' width with ``ngrams``.
        """
        span = max(self.max_len, self.ngrams.window) if self.ngrams else self.max_len
        rows = [self.ids(t)[-span:] for t in texts]
        out = np.zeros((len(rows), span), dtype=np.int64)
        for i, row in enumerate(rows):
            if row:
                out[i, span - len(row):] = row
        if self.ngrams is None:
            return out
        return np.concatenate([out[:, span - self.max_len:],
                               self.ngrams.features(out[:, span - self.ngrams.window:])], axis=1)

    def params(self, vocab_file: str = "vocab.json") -> dict[str, object]:
        """The manifest's ``preprocessing`` block for this tokeniser."""
        params: dict[str, object] = {
            "id": NGRAM_TOKENIZER_ID if self.ngrams else TOKENIZER_ID, "vocab_file": vocab_file,
            "vocab_size": len(self.vocab), "max_len": self.max_len, "pattern": self.pattern,
            "lowercase": True, "pad_id": PAD_ID, "oov_id": OOV_ID, "padding": "pre", "truncating": "pre"}
        if self.ngrams:
            params["ngrams"] = self.ngrams.params()
            params["layout"] = (f"tokens[:, :{self.max_len}] = word ids; tokens[:, {self.max_len}:] = "
                                "n-gram feature ids (0 = padding)")
        return params

    def save_vocab(self, path: Path) -> None:
        path.write_text(json.dumps(list(self.vocab), ensure_ascii=False), encoding="utf-8")


def build_vocab(texts: Iterable[str], max_size: int = 20000, min_count: int = 2,
                pattern: str = TOKEN_PATTERN) -> list[str]:
    """Vocabulary from training texts only; ties broken alphabetically for determinism."""
    probe = Tokenizer([PAD_TOKEN, OOV_TOKEN], pattern=pattern)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(probe.tokens(text))
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return [PAD_TOKEN, OOV_TOKEN, *ranked[: max(0, max_size - 2)]]


def load_tokenizer(vocab_path: Path, max_len: int, pattern: str = TOKEN_PATTERN,
                   ngrams: dict[str, Any] | None = None) -> Tokenizer:
    """The tokeniser of a manifest; ``ngrams`` is its ``preprocessing.ngrams`` block, if any."""
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    hasher = None
    if ngrams:
        if ngrams.get("hash") != "splitmix64_ids_v1":
            raise ValueError(f"unsupported n-gram hash {ngrams.get('hash')!r}")
        hasher = NgramHasher(int(ngrams["vocab_size"]), int(ngrams["buckets"]), int(ngrams["max_n"]),
                             int(ngrams["window"]))
    return Tokenizer(vocab=vocab, max_len=max_len, pattern=pattern, ngrams=hasher)

