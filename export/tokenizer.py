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

import numpy as np
import numpy.typing as npt

TOKENIZER_ID = "word_lower_v1"
TOKEN_PATTERN = r"[a-z0-9]+(?:'[a-z]+)?"
PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class Tokenizer:
    """Lower-case word tokeniser with a fixed vocabulary.

    Padding and truncation are both on the left ("pre", as Keras' defaults): the
    LSTM's final state then sits on the last real tokens.
    """

    vocab: Sequence[str]
    max_len: int = 200
    pattern: str = TOKEN_PATTERN
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.vocab) < 2 or self.vocab[PAD_ID] != PAD_TOKEN or self.vocab[OOV_ID] != OOV_TOKEN:
            raise ValueError("vocabulary must start with <pad>, <oov>")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.vocab)})
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    def tokens(self, text: str) -> list[str]:
        return self._regex.findall(_HTML_BREAK.sub(" ", text).lower())

    def ids(self, text: str) -> list[int]:
        get = self._index.get
        return [get(t, OOV_ID) for t in self.tokens(text)]

    def encode(self, texts: Iterable[str]) -> npt.NDArray[np.int64]:
        """Texts to an int64 ``[batch, max_len]`` array, left-padded and left-truncated."""
        rows = [self.ids(t)[-self.max_len:] for t in texts]
        out = np.zeros((len(rows), self.max_len), dtype=np.int64)
        for i, row in enumerate(rows):
            if row:
                out[i, self.max_len - len(row):] = row
        return out

    def params(self, vocab_file: str = "vocab.json") -> dict[str, object]:
        """The manifest's ``preprocessing`` block for this tokeniser."""
        return {"id": TOKENIZER_ID, "vocab_file": vocab_file, "vocab_size": len(self.vocab),
                "max_len": self.max_len, "pattern": self.pattern, "lowercase": True,
                "pad_id": PAD_ID, "oov_id": OOV_ID, "padding": "pre", "truncating": "pre"}

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


def load_tokenizer(vocab_path: Path, max_len: int, pattern: str = TOKEN_PATTERN) -> Tokenizer:
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    return Tokenizer(vocab=vocab, max_len=max_len, pattern=pattern)
