"""Language-model pretraining of the sentiment model's embedding and LSTM (ULMFiT's first step).

The classifier's ``embedding`` and ``encoder`` layers are first trained to predict the next
word on unlabelled text (other corpora, and the target corpus's own texts except its test
part), then the classifier starts from them. The LM reads exactly what the classifier reads
(the same vocabulary, left-padded ``max_len`` ids), so the weights carry over unchanged.

Pretraining is a separate, seeded and cached step: the weights are stored under
``.sentinel/lm/`` keyed by everything that determines them (vocabulary, corpus files and
sizes, configuration), so a second release run reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.tokenizer import OOV_ID, PAD_ID, Tokenizer
from training.errors import DataError
from training.reviews import split_columns

logger = logging.getLogger(__name__)
DEFAULT_CACHE = Path(".sentinel/lm")


@dataclass(frozen=True)
class LMConfig:
    units: int
    embed_dim: int
    max_len: int
    out_vocab: int = 4000  # next-word targets: the most frequent words; rarer ones predict <oov>
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 2e-3
    dropout: float = 0.1
    max_texts: int = 0  # per corpus file; 0 = all
    seed: int = 42


def parse_corpus(spec: str) -> tuple[Path, list[str]]:
    """``PATH`` or ``PATH:COL,COL`` (text columns joined with a space; default: the review columns)."""
    path, _, cols = spec.partition(":") if ":" in spec and not Path(spec).is_file() else (spec, "", "")
    return Path(path), split_columns([cols]) if cols else []


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def read_corpus(specs: Sequence[str], exclude: set[str], max_texts: int = 0, seed: int = 0,
                labelled: tuple[str, Sequence[str]] | None = None) -> list[str]:
    """Unlabelled texts of every corpus, without any text in ``exclude`` (the test part).

    ``labelled`` is the labelled file's name and text columns: that file is always read with
    those columns, so its test texts are recognised and left out whatever columns were asked.
    """
    import pandas as pd

    from training.reviews import _TEXT_DEFAULTS

    banned = {_normal(t) for t in exclude}
    texts: list[str] = []
    for spec in specs:
        path, cols = parse_corpus(spec)
        if not path.is_file():
            raise DataError(f"no such corpus file: {path}")
        if labelled is not None and path.name == labelled[0]:
            cols = list(labelled[1])
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        cols = cols or next((list(c) for c in _TEXT_DEFAULTS if all(x in frame.columns for x in c)), [])
        if not cols or any(c not in frame.columns for c in cols):
            raise DataError(f"{path}: text columns {cols or '?'} not found (have {', '.join(frame.columns)})")
        column = frame[cols].agg(" ".join, axis=1).str.strip()
        kept = [t for t in column.tolist() if t and _normal(t) not in banned]
        if max_texts and len(kept) > max_texts:
            pick = np.sort(np.random.default_rng(seed).choice(len(kept), size=max_texts, replace=False))
            kept = [kept[i] for i in pick]
        logger.info("lm corpus %s: %d texts (%d excluded or empty)", path.name, len(kept),
                    len(column) - len(kept))
        texts.extend(kept)
    return texts


def lm_arrays(ids: npt.NDArray[np.int64], out_vocab: int) -> tuple[npt.NDArray[np.int64], ...]:
    """Inputs, next-word targets and weights: padding neither predicts nor is predicted."""
    x, y = ids[:, :-1], ids[:, 1:].copy()
    weight = ((x != PAD_ID) & (y != PAD_ID)).astype(np.float32)
    y[y >= out_vocab] = OOV_ID
    return x, y, weight  # type: ignore[return-value]


def build_lm(vocab_size: int, cfg: LMConfig, embedding_matrix: npt.NDArray[np.float32] | None) -> Any:
    """Embedding + LSTM (named as in the classifier) + a next-word softmax head."""
    import keras
    from keras import layers

    init: Any = "uniform" if embedding_matrix is None else keras.initializers.Constant(embedding_matrix)
    inp = keras.Input((None,), dtype="int64", name="tokens")
    x = layers.Embedding(vocab_size, cfg.embed_dim, embeddings_initializer=init, name="embedding")(inp)
    x = layers.LSTM(cfg.units, return_sequences=True, name="encoder")(x)
    x = layers.Dropout(cfg.dropout)(x)
    out = layers.Dense(cfg.out_vocab, name="next_word")(x)
    model = keras.Model(inp, out, name="sentiment_lm")
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[])
    return model


def cache_key(vocab: Sequence[str], specs: Sequence[str], cfg: LMConfig, embedding_matrix: Any) -> str:
    h = hashlib.sha256(json.dumps({"vocab": list(vocab), "cfg": asdict(cfg)}).encode())
    for spec in specs:
        path, cols = parse_corpus(spec)
        h.update(f"{path.name}:{path.stat().st_size}:{cols}".encode())
    if embedding_matrix is not None:
        h.update(np.ascontiguousarray(embedding_matrix, np.float32).tobytes())
    return h.hexdigest()[:16]


def pretrained_weights(vocab: Sequence[str], specs: Sequence[str], exclude: set[str], cfg: LMConfig,
                       embedding_matrix: npt.NDArray[np.float32] | None = None,
                       cache: Path = DEFAULT_CACHE, labelled: tuple[str, Sequence[str]] | None = None,
                       ) -> tuple[dict[str, list[npt.NDArray[Any]]], dict[str, Any]]:
    """``{"embedding": [...], "encoder": [...]}`` weights and a report; trained once, then cached."""
    key = cache_key(vocab, specs, cfg, embedding_matrix)
    path = cache / f"{key}.npz"
    info_path = cache / f"{key}.json"
    if path.is_file() and info_path.is_file():
        with np.load(path) as z:
            weights = {"embedding": [z["embedding_0"]],
                       "encoder": [z[f"encoder_{i}"] for i in range(3)]}
        return weights, {**json.loads(info_path.read_text()), "cached": True}
    import keras

    from training.models import seed_everything
    from training.progress import keras_progress

    seed_everything(cfg.seed)
    texts = read_corpus(specs, exclude, cfg.max_texts, cfg.seed, labelled)
    ids = Tokenizer(list(vocab), max_len=cfg.max_len).encode(texts)
    order = np.random.default_rng(cfg.seed).permutation(len(ids))
    n_val = max(1, len(ids) // 50)
    x, y, w = lm_arrays(ids[order], cfg.out_vocab)
    model = build_lm(len(vocab), cfg, embedding_matrix)
    t0 = time.perf_counter()
    hist = model.fit(x[n_val:], y[n_val:], sample_weight=w[n_val:],
                     validation_data=(x[:n_val], y[:n_val], w[:n_val]),
                     epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=0,
                     callbacks=[keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True),
                                keras_progress(cfg.epochs, "language model")])
    val_loss = [float(v) for v in hist.history["val_loss"]]
    weights = {name: [np.asarray(a) for a in model.get_layer(name).get_weights()]
               for name in ("embedding", "encoder")}
    info = {"texts": len(texts), "tokens": int(w.sum()), "epochs": len(val_loss),
            "val_loss_by_epoch": val_loss, "val_perplexity": float(np.exp(min(val_loss))),
            "seconds": round(time.perf_counter() - t0, 1), "config": asdict(cfg), "corpora": list(specs),
            "key": key}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, embedding_0=weights["embedding"][0],
             **{f"encoder_{i}": a for i, a in enumerate(weights["encoder"])})
    info_path.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    logger.info("lm pretraining: %d texts, perplexity %.1f, %.0f s", len(texts), info["val_perplexity"],
                info["seconds"])
    return weights, {**info, "cached": False}
