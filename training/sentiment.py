"""Training the feedback-sentiment model, with a TF-IDF baseline on the very same split.

The escalation threshold is chosen on validation for a target recall of negatives,
then every metric is reported on test at that threshold, for the LSTM and the baseline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.calibration import apply_calibration, expected_calibration_error, fit_calibration
from export.manifest import SENTIMENT_MODEL, TensorSpec
from export.tokenizer import NgramHasher, Tokenizer, build_vocab
from training.metrics import classification_metrics, threshold_for_recall
from training.models import FitResult, seed_everything, tensorboard_callback
from training.release import ReleaseSpec
from training.reviews import AuxTargets, LabelledTexts, stratified_split

VOCAB_FILE = "vocab.json"


@dataclass(frozen=True)
class SentimentConfig:
    arch: str = "lstm"
    max_len: int = 200
    vocab_size: int = 20000
    min_count: int = 2
    embed_dim: int = 100
    units: int = 64
    dropout: float = 0.3
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 64
    patience: int = 2
    seed: int = 42
    target_recall: float = 0.90
    split: tuple[float, float, float] = (0.70, 0.15, 0.15)
    embeddings: str | None = None
    pooling: str = "last"
    ngrams: int = 0  # wide branch over word 1..n-grams; 0 = no wide branch
    ngram_buckets: int = 1 << 18
    ngram_window: int = 0  # last tokens the n-grams come from; 0 = max_len
    wide_l2: float = 0.0
    wide_warm_start: bool = True  # start the wide branch from a logistic regression on its features
    wide_idf: bool = True  # weight n-gram occurrences by their training-set idf
    # warm-start candidates, chosen on validation: plain, or with Naive-Bayes log-count ratios
    # as a per-feature prior scale (NBSVM, Wang & Manning 2012)
    wide_nb: tuple[bool, ...] = (False, True)
    calibrate: bool = True
    pretrain: tuple[str, ...] = ()  # unlabelled corpora for LM pretraining (training.pretrain)
    pretrain_epochs: int = 3
    pretrain_max_texts: int = 0  # per corpus; 0 = all
    pretrain_out_vocab: int = 4000
    freeze_epochs: int = 1  # after pretraining: epochs with embedding + LSTM frozen (gradual unfreezing)
    # auxiliary heads on finer targets (cumulative ratings, a flag; training.reviews.AuxTargets),
    # trained beside the main head and dropped from the exported graph
    aux: bool = False
    aux_flag_col: str | None = None
    aux_weight: float = 0.5  # each auxiliary head's share of the loss, the main head's is 1
    # aux heads whose logits are averaged with the main one in the exported score (fold_heads)
    export_heads: tuple[str, ...] = ()
    # > 0: cross-fitted release (cross_fit): calibration and threshold from out-of-fold
    # scores over train + validation, the released model refitted on both for ``epochs``
    refit_folds: int = 0
    # > 0: the threshold rule asks the recall's one-sided lower bound at this confidence to
    # reach target_recall (metrics.threshold_for_recall)
    recall_confidence: float = 0.0
    wide_c: tuple[float, ...] = (1.0, 4.0, 16.0)  # warm-start C candidates (one = no choice)
    # > 0 (aux path): keep the exponential moving average of the weights at this momentum per
    # step and end on it; the per-epoch validation AUC is then the average's
    ema: float = 0.0


@dataclass(frozen=True)
class Prepared:
    """One split, tokenised once: every model below sees exactly these rows."""

    parts: dict[str, LabelledTexts]
    tokenizer: Tokenizer
    encoded: dict[str, npt.NDArray[np.int64]]
    # with auxiliary targets: their names, and per part ("train", "val", "between") a table
    # [rows, heads]; encoded["between"] holds the rows that have aux targets only (training)
    aux_names: tuple[str, ...] = ()
    aux: dict[str, npt.NDArray[np.float32]] | None = None

    def training_rows(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Inputs for training and the main label (NaN for rows with aux targets only)."""
        y = self.parts["train"].labels.astype(np.float64)
        if self.aux is None:
            return self.encoded["train"], y
        between = self.encoded["between"]
        return (np.concatenate([self.encoded["train"], between]),
                np.concatenate([y, np.full(len(between), np.nan)]))


def prepare(data: LabelledTexts, cfg: SentimentConfig, aux: AuxTargets | None = None) -> Prepared:
    """Stratified split, vocabulary from the training texts only, encoding of every part.

    ``aux`` rows outside the labelled ones (rating 3) join the training part only: the
    validation and test parts are exactly those of a run without them.
    """
    return prepare_parts(data, stratified_split(data.labels, cfg.split, cfg.seed), cfg, aux)


def prepare_parts(data: LabelledTexts, idx: dict[str, npt.NDArray[np.int64]], cfg: SentimentConfig,
                  aux: AuxTargets | None = None) -> Prepared:
    """Encode the parts ``idx`` names (rows of ``data``); the vocabulary is the "train" part's."""
    parts = {name: data.take(i) for name, i in idx.items()}
    # The vocabulary comes from the labelled training texts only, with or without aux rows:
    # the rating-3 texts would add ~600 words, 0.24 MB of embedding, and take the ONNX file
    # past 5 MB (docs/training.md).
    vocab = build_vocab(parts["train"].texts, max_size=cfg.vocab_size, min_count=cfg.min_count)
    window = cfg.ngram_window or cfg.max_len
    hasher = NgramHasher(len(vocab), cfg.ngram_buckets, cfg.ngrams, window) if cfg.ngrams else None
    tokenizer = Tokenizer(vocab, max_len=cfg.max_len, ngrams=hasher)
    encoded = {k: tokenizer.encode(v.texts) for k, v in parts.items()}
    if aux is None:
        return Prepared(parts, tokenizer, encoded)
    encoded["between"] = tokenizer.encode(aux.between_texts)
    tables = {k: aux.labelled[i] for k, i in idx.items() if k != "test"}
    return Prepared(parts, tokenizer, encoded, aux.names, {**tables, "between": aux.between})


def class_weights(labels: npt.NDArray[np.int64]) -> dict[int, float]:
    """Balanced weights: the rare negatives count as much in the loss as the positives."""
    counts = np.bincount(labels, minlength=2)
    return {c: float(len(labels) / (2.0 * max(1, counts[c]))) for c in (0, 1)}


def fit(cfg: SentimentConfig, prep: Prepared, embedding_matrix: npt.NDArray[np.float32] | None = None,
        tensorboard: Path | None = None, lm_cache: Path | None = None, monitor: bool = True) -> FitResult:
    """Class-weighted training, early stopping on validation ROC-AUC, best weights restored.

    ``cfg.patience`` 0 trains exactly ``cfg.epochs`` (a refit has no validation part);
    ``monitor`` False skips scoring the "val" part each epoch (the aux path).
    """
    import keras

    from training.models import build_sentiment_model
    from training.progress import keras_progress

    seed_everything(cfg.seed)
    ngrams = prep.tokenizer.ngrams
    model = build_sentiment_model(len(prep.tokenizer.vocab), cfg.max_len, cfg.arch, cfg.embed_dim, cfg.units,
                                  cfg.dropout, cfg.learning_rate, embedding_matrix, cfg.pooling,
                                  ngrams.n_features if ngrams else 0, ngrams.width if ngrams else 0,
                                  cfg.wide_l2)
    extra: dict[str, Any] = {}
    train_model = model
    if prep.aux is not None:
        from training.models import aux_training_model

        if cfg.pretrain:
            raise ValueError("auxiliary heads and LM pretraining are not implemented together")
        train_model = aux_training_model(model, len(prep.aux_names), cfg.learning_rate, cfg.ema)
        extra["aux_heads"] = list(prep.aux_names)
    if cfg.pretrain:
        extra["pretraining"] = load_pretrained(model, cfg, prep, embedding_matrix, lm_cache)
    if ngrams is not None:
        warm = init_wide(model, prep, cfg.seed, cfg.wide_idf, cfg.wide_warm_start, cfg.wide_nb,
                         cfg.aux_weight, train_model if prep.aux is not None else None, cfg.wide_c)
        if warm:
            extra["wide_warm_start"] = warm
    y_va = prep.parts["val"].labels
    callbacks = [keras_progress(cfg.epochs, f"sentiment {cfg.arch}")]
    if cfg.patience > 0:
        callbacks.insert(0, keras.callbacks.EarlyStopping("val_auc", mode="max", patience=cfg.patience,
                                                          restore_best_weights=True))
    if tensorboard:
        callbacks.append(tensorboard_callback(tensorboard))
    x_tr, y_main = prep.training_rows()
    history: dict[str, list[float]] = {}
    if prep.aux is not None:
        # The main head's validation AUC, from the exported model, before early stopping reads it.
        if monitor:
            callbacks.insert(0, validation_auc_callback(model, prep.encoded["val"], y_va))
            if cfg.ema > 0:  # score the average, as the model that fit() leaves
                callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        targets = packed_targets(y_main, prep.aux["train"], prep.aux["between"], cfg.aux_weight)
        t0 = time.perf_counter()
        hist = train_model.fit(x_tr, targets, epochs=cfg.epochs, batch_size=cfg.batch_size,
                               callbacks=callbacks, verbose=0)
        history.update({k: [float(v) for v in vals] for k, vals in hist.history.items()})
        best = int(np.argmax(history["val_auc"])) + 1 if cfg.patience > 0 else cfg.epochs
        if cfg.export_heads:
            extra["export_heads"] = fold_heads(model, train_model, prep.aux_names, cfg.export_heads)
        return FitResult(model, history, time.perf_counter() - t0, best, extra, train_model)
    y_tr = prep.parts["train"].labels
    common = {"validation_data": (prep.encoded["val"], y_va), "batch_size": cfg.batch_size,
              "class_weight": class_weights(y_tr), "verbose": 0}
    t0 = time.perf_counter()
    frozen = min(cfg.freeze_epochs, cfg.epochs) if cfg.pretrain else 0
    if frozen:
        # Gradual unfreezing: the new heads first learn to read the pretrained states,
        # so the first large gradients do not wipe out what the LM learned.
        _set_trainable(model, False, cfg.learning_rate)
        hist = model.fit(prep.encoded["train"], y_tr, epochs=frozen, **common)
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        _set_trainable(model, True, cfg.learning_rate)
    hist = model.fit(prep.encoded["train"], y_tr, epochs=cfg.epochs - frozen, callbacks=callbacks, **common)
    for k, vals in hist.history.items():
        history.setdefault(k, []).extend(float(v) for v in vals)
    best = int(np.argmax(history["val_auc"])) + 1 if cfg.patience > 0 else cfg.epochs
    return FitResult(model, history, time.perf_counter() - t0, best, extra)


def fold_heads(model: Any, train_model: Any, aux_names: tuple[str, ...],
               chosen: tuple[str, ...]) -> list[str]:
    """Make the exported logit the mean of the main logit and the ``chosen`` aux heads' logits.

    Every head is ``dense_k(h) + wide + b_k``, so the mean is one Dense on the same features
    (the mean kernel and bias) plus the wide logit unchanged: the exported graph keeps its
    shape and size. A mean, not a sum, keeps the logit's scale, so the float32 sigmoid does
    not saturate at 1.0 and tie the most negative texts. Calibration, fitted afterwards on
    validation, brings it back to a probability. Averaging the rating cuts next to the
    label's (<= 1 and <= 3 around <= 2) is an ordinal score, "how low is the rating", and
    ranked negatives better on validation than the main head alone.
    """
    unknown = [c for c in chosen if c not in aux_names]
    if unknown:
        raise ValueError(f"unknown aux heads {unknown}; the heads are {list(aux_names)}")
    cols = [aux_names.index(c) for c in chosen]
    n = 1.0 + len(cols)
    kernel, bias = model.get_layer("deep_logit").get_weights()
    aux_kernel, aux_bias = train_model.get_layer("aux_heads").get_weights()
    model.get_layer("deep_logit").set_weights([(kernel + aux_kernel[:, cols].sum(axis=1, keepdims=True)) / n,
                                               (bias + aux_bias[cols].sum(keepdims=True)) / n])
    return [aux_names[i] for i in cols]


def balanced_weights(target: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per-row weights that give both classes of a (NaN-masked) target equal mass; 0 where NaN."""
    known = ~np.isnan(target)
    pos = float(np.sum(target[known] == 1))
    neg = float(known.sum()) - pos
    w = np.zeros(len(target))
    w[known & (target == 1)] = known.sum() / (2.0 * max(pos, 1.0))
    w[known & (target == 0)] = known.sum() / (2.0 * max(neg, 1.0))
    return w


def packed_targets(y_main: npt.NDArray[np.float64], aux_train: npt.NDArray[np.float32],
                   aux_between: npt.NDArray[np.float32], aux_weight: float) -> npt.NDArray[np.float32]:
    """``[targets | weights]`` per head (main first) for ``models.packed_logit_loss``."""
    aux = np.concatenate([aux_train, aux_between]).astype(np.float64)
    targets = np.column_stack([y_main, aux])
    weights = np.column_stack([balanced_weights(col) for col in targets.T])
    weights[:, 1:] *= aux_weight
    return np.hstack([np.nan_to_num(targets), weights]).astype(np.float32)


def validation_auc_callback(model: Any, x_val: npt.NDArray[np.int64], y_val: npt.NDArray[np.int64]) -> Any:
    """Adds ``model``'s validation ROC-AUC to each epoch's logs, for early stopping to read:
    the training model has several heads, the main one is scored through the exported model."""
    import keras
    from sklearn.metrics import roc_auc_score

    class ValidationAUC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            p = np.asarray(model.predict(x_val, batch_size=512, verbose=0)).reshape(-1)
            if logs is not None:
                logs["val_auc"] = float(roc_auc_score(y_val, p))

    return ValidationAUC()


def _set_trainable(model: Any, trainable: bool, learning_rate: float) -> None:
    import keras

    for name in ("embedding", "encoder"):
        model.get_layer(name).trainable = trainable
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])


def load_pretrained(model: Any, cfg: SentimentConfig, prep: Prepared,
                    embedding_matrix: npt.NDArray[np.float32] | None,
                    cache: Path | None = None) -> dict[str, Any]:
    """Embedding and LSTM weights from the (cached) language model; the test texts never enter it."""
    from training.pretrain import DEFAULT_CACHE, LMConfig, pretrained_weights

    if cfg.arch != "lstm":
        raise ValueError("LM pretraining is implemented for the one-direction LSTM only")
    desc = prep.parts["test"].description
    lm_cfg = LMConfig(units=cfg.units, embed_dim=cfg.embed_dim, max_len=cfg.max_len,
                      out_vocab=min(cfg.pretrain_out_vocab, len(prep.tokenizer.vocab)),
                      epochs=cfg.pretrain_epochs, max_texts=cfg.pretrain_max_texts, seed=cfg.seed)
    weights, info = pretrained_weights(prep.tokenizer.vocab, cfg.pretrain, set(prep.parts["test"].texts),
                                       lm_cfg, embedding_matrix, cache or DEFAULT_CACHE,
                                       (desc["file"], desc["text_columns"]) if "file" in desc else None)
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)
    return info


def wide_idf(features: npt.NDArray[np.int64], n_features: int) -> npt.NDArray[np.float32]:
    """Smoothed idf of each feature over the training texts (sklearn's: ln((1 + n) / (1 + df)) + 1)."""
    rows, cols = np.nonzero(features)
    pairs = np.unique(rows.astype(np.int64) * n_features + features[rows, cols])
    df = np.bincount(pairs % n_features, minlength=n_features)
    return (np.log((1.0 + len(features)) / (1.0 + df)) + 1.0).astype(np.float32)


def wide_matrix(features: npt.NDArray[np.int64], idf: npt.NDArray[np.float32]) -> Any:
    """Exactly what ``HashedLinear`` multiplies its weights by, as a sparse matrix."""
    from scipy import sparse

    rows, cols = np.nonzero(features)
    ids = features[rows, cols]
    value = idf[ids].astype(np.float64)
    norm = np.sqrt(np.bincount(rows, weights=value**2, minlength=len(features)))
    data = value / np.maximum(norm[rows], 1e-6)
    return sparse.csr_matrix((data, (rows, ids)), shape=(len(features), len(idf)))


def nb_ratio(x: Any, y: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """|log(p(f | negative) / p(f | positive))| from document presence, add-one smoothed."""
    present = (x > 0).astype(np.float64)
    neg = np.asarray(present[y == 1].sum(0)).ravel() + 1.0
    pos = np.asarray(present[y == 0].sum(0)).ravel() + 1.0
    return np.abs(np.log((neg / neg.sum()) / (pos / pos.sum())))


def init_wide(model: Any, prep: Prepared, seed: int, use_idf: bool = True,
              warm_start: bool = True, nb_options: tuple[bool, ...] = (False,), aux_weight: float = 0.5,
              train_model: Any = None, c_options: tuple[float, ...] = (1.0, 4.0, 16.0)) -> dict[str, Any]:
    """Set the wide branch's idf; with ``warm_start``, fit a balanced logistic regression on
    exactly what ``HashedLinear`` computes and load its weights.

    Joint training from zeros left the linear branch far behind the LSTM, which overfits in a
    few epochs; started from the regression, the LSTM learns what the n-grams miss.
    C, and whether the features are scaled by their Naive-Bayes ratio first, are chosen on
    validation ROC-AUC. The scale needs no change to the graph: a regression fitted on
    ``x * r`` is the layer with weights ``coef * r``, so only the regularisation differs
    (features that separate the classes are penalised less).

    With auxiliary targets the regression is the training model's linear part: one weight
    vector shared by every head, an intercept per head (rows stacked once per head, an
    indicator column per head), fitted on the training rows and the aux-only rows.
    """
    from sklearn.metrics import roc_auc_score

    hasher = prep.tokenizer.ngrams
    assert hasher is not None
    start = prep.tokenizer.max_len
    x_rows, y_main = prep.training_rows()
    idf = (wide_idf(x_rows[:, start:], hasher.n_features) if use_idf
           else np.ones(hasher.n_features, np.float32))
    if not warm_start:
        layer = model.get_layer("wide_logit")
        layer.set_weights([layer.get_weights()[0], idf])
        return {}
    from scipy import sparse

    x_tr, x_va = wide_matrix(x_rows[:, start:], idf), wide_matrix(prep.encoded["val"][:, start:], idf)
    y_va = prep.parts["val"].labels
    known = ~np.isnan(y_main)
    ratio = nb_ratio(x_tr[known], y_main[known].astype(np.int64)) if any(nb_options) else None
    heads = (np.column_stack([y_main, np.concatenate([prep.aux["train"], prep.aux["between"]])])
             if prep.aux is not None else y_main[:, None])
    best: tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64], float, bool] = (
        -1.0, np.zeros(0), np.zeros(0), 0.0, False)
    tried: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for nb in nb_options:
        scale = sparse.diags(ratio) if nb else None
        a, b = (x_tr @ scale, x_va @ scale) if scale is not None else (x_tr, x_va)
        for c in c_options:
            coef, intercepts = _shared_logreg(a, heads, c, aux_weight, seed)
            # one candidate: nothing to choose, and a refit's "val" part is its training rows
            auc = (float(roc_auc_score(y_va, b @ coef)) if len(nb_options) * len(c_options) > 1
                   else float("nan"))
            tried.append({"nb": nb, "C": c, "val_roc_auc": auc})
            if auc > best[0] or best[0] < 0:
                best = (auc, coef, intercepts, c, nb)
    auc, coef, intercepts, c, nb = best
    weights = coef * ratio if nb and ratio is not None else coef
    model.get_layer("wide_logit").set_weights([weights.astype(np.float32), idf])
    kernel, _ = model.get_layer("deep_logit").get_weights()
    model.get_layer("deep_logit").set_weights([kernel, intercepts[:1].astype(np.float32)])
    if train_model is not None:
        kernel, _ = train_model.get_layer("aux_heads").get_weights()
        train_model.get_layer("aux_heads").set_weights([kernel, intercepts[1:].astype(np.float32)])
    return {"C": c, "nb_scale": nb, "val_roc_auc": auc, "tried": tried, "heads": int(heads.shape[1]),
            "seconds": round(time.perf_counter() - t0, 1)}


def _shared_logreg(x: Any, heads: npt.NDArray[np.float64], c: float, aux_weight: float,
                   seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Class-balanced logistic regression, one weight vector for all heads (columns of
    ``heads``, NaN = unknown), an intercept each; returns (weights, intercepts)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    n_heads = heads.shape[1]
    if n_heads == 1:
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
        known = ~np.isnan(heads[:, 0])
        clf.fit(x[known], heads[known, 0].astype(np.int64))
        return clf.coef_[0].astype(np.float64), clf.intercept_.astype(np.float64)
    blocks, targets, weights = [], [], []
    for j in range(n_heads):
        known = np.flatnonzero(~np.isnan(heads[:, j]))
        indicator = sparse.csr_matrix((np.ones(len(known)), (np.arange(len(known)), np.full(len(known), j))),
                                      shape=(len(known), n_heads))
        blocks.append(sparse.hstack([x[known], indicator]))
        targets.append(heads[known, j].astype(np.int64))
        weights.append(balanced_weights(heads[known, j]) * (1.0 if j == 0 else aux_weight))
    clf = LogisticRegression(C=c, fit_intercept=False, max_iter=5000, random_state=seed)
    clf.fit(sparse.vstack(blocks).tocsr(), np.concatenate(targets), sample_weight=np.concatenate(weights))
    coef = clf.coef_[0].astype(np.float64)
    return coef[:-n_heads], coef[-n_heads:]


def calibrated(raw: dict[str, npt.NDArray[np.float64]], prep: Prepared, enabled: bool = True,
               fitted_on: str = "validation") -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, Any]]:
    """Calibration fitted on validation (or out-of-fold scores), applied to every part (as serving will)."""
    if not enabled:
        return raw, {}
    cal = {**fit_calibration(raw["val"], prep.parts["val"].labels), "fitted_on": fitted_on}
    return {k: apply_calibration(v, cal) for k, v in raw.items()}, cal


def calibration_report(raw: dict[str, npt.NDArray[np.float64]], cal_probs: dict[str, npt.NDArray[np.float64]],
                       prep: Prepared) -> dict[str, float]:
    """ECE (15 bins) before and after calibration, on validation and test."""
    return {f"ece_{k}_{tag}": expected_calibration_error(prep.parts[k].labels, probs[k])
            for tag, probs in (("raw", raw), ("calibrated", cal_probs)) for k in ("val", "test")}


def tfidf_baseline(prep: Prepared, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """TF-IDF word 1-2-grams + balanced logistic regression; C picked on validation ROC-AUC."""
    from sklearn.metrics import roc_auc_score

    t0 = time.perf_counter()
    best: tuple[float, Any, float] = (-1.0, None, 0.0)
    for c in (1.0, 4.0, 16.0):
        predict = _tfidf_fit(prep.parts["train"], prep.tokenizer.tokens, c, seed)
        auc = roc_auc_score(prep.parts["val"].labels, predict(prep.parts["val"].texts))
        best = max(best, (auc, predict, c), key=lambda b: b[0])
    return best[1], {"C": best[2], "seconds": round(time.perf_counter() - t0, 1)}


def score(p_val: npt.NDArray[np.float64], p_test: npt.NDArray[np.float64], prep: Prepared,
          target: float, confidence: float = 0.0) -> dict[str, Any]:
    """Threshold from validation (target negative recall), metrics on test at that threshold."""
    t = threshold_for_recall(prep.parts["val"].labels, p_val, target, confidence)
    return classification_metrics(prep.parts["test"].labels, p_test, t)


def lstm_probabilities(model: Any, prep: Prepared,
                       skip_val: bool = False) -> dict[str, npt.NDArray[np.float64]]:
    return {k: np.asarray(model.predict(prep.encoded[k], batch_size=512, verbose=0), np.float64).reshape(-1)
            for k in (("test",) if skip_val else ("val", "test"))}


@dataclass
class CrossFit:
    """A cross-fitted release: the model refitted on train + validation, and the out-of-fold
    scores its calibration and threshold are fitted on (``prep.parts["val"]`` holds the
    train + validation rows, in the order of ``oof``)."""

    prep: Prepared
    fitted: FitResult
    oof: npt.NDArray[np.float64]  # raw p_negative of each row from the fold model that did not train on it
    folds: list[dict[str, Any]]
    coverage: float | None


Embed = Callable[[SentimentConfig, Prepared], tuple[SentimentConfig, Any, float | None]]


def refit_indices(labels: npt.NDArray[np.int64], cfg: SentimentConfig
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[npt.NDArray[np.int64]]]:
    """(train + validation rows, test rows, held-out rows of each fold): the test rows are
    exactly those of the single-split recipe with the same seed."""
    from sklearn.model_selection import StratifiedKFold

    idx = stratified_split(labels, cfg.split, cfg.seed)
    rows = np.sort(np.concatenate([idx["train"], idx["val"]]))
    kfold = StratifiedKFold(cfg.refit_folds, shuffle=True, random_state=cfg.seed)
    return rows, idx["test"], [rows[held] for _, held in kfold.split(rows, labels[rows])]


def cross_fit(data: LabelledTexts, cfg: SentimentConfig, aux: AuxTargets | None, embed: Embed,
              folds_only: bool = False) -> CrossFit:
    """K fold models for out-of-fold scores, then the released model on all of train + val.

    One validation part of ~280 negatives puts +-1.8 points of sampling noise on the recall
    a threshold chosen on it gives elsewhere; the out-of-fold scores of all ~1,600 negatives
    cut that to about +-0.75, and the released model trains on 21 % more rows. Every model
    trains ``cfg.epochs`` with no early stopping (the held-out fold must not choose for it).
    """
    rows, test, held = refit_indices(data.labels, cfg)
    oof = np.full(len(rows), np.nan)
    folds: list[dict[str, Any]] = []
    for k, fold in enumerate(held):
        prep = prepare_parts(data, {"train": np.setdiff1d(rows, fold), "val": fold}, cfg, aux)
        fcfg, matrix, _ = embed(cfg, prep)
        fitted = fit(fcfg, prep, matrix)
        p = np.asarray(fitted.model.predict(prep.encoded["val"], batch_size=512, verbose=0), np.float64)
        oof[np.searchsorted(rows, fold)] = p.reshape(-1)  # rows is sorted
        folds.append({"fold": k, "n": len(fold), "negative": int(data.labels[fold].sum()),
                      "vocab": len(prep.tokenizer.vocab), "val_auc_by_epoch": fitted.history.get("val_auc"),
                      "train_seconds": round(fitted.seconds, 1),
                      "wide_warm_start": fitted.extra.get("wide_warm_start")})
    final = prepare_parts(data, {"train": rows, "val": rows, "test": test}, cfg, aux)
    fcfg, matrix, coverage = embed(cfg, final)
    if folds_only:
        return CrossFit(final, FitResult(None, {}, 0.0, 0, {}), oof, folds, coverage)
    fitted = fit(fcfg, final, matrix, monitor=False)
    fitted.extra["refit"] = {"folds": len(held), "fold_models": folds}
    return CrossFit(final, fitted, oof, folds, coverage)


def tfidf_cross_fit(data: LabelledTexts, cfg: SentimentConfig, tokens: Callable[[str], list[str]],
                    seed: int = 0) -> tuple[npt.NDArray[np.float64], Any, dict[str, Any]]:
    """The baseline, cross-fitted like the model: out-of-fold scores (C chosen on their
    ROC-AUC) and a final regression on all of train + validation."""
    from sklearn.metrics import roc_auc_score

    rows, _, held = refit_indices(data.labels, cfg)
    y = data.labels[rows]
    t0 = time.perf_counter()
    best: tuple[float, float, npt.NDArray[np.float64]] = (-1.0, 0.0, np.zeros(0))
    for c in (1.0, 4.0, 16.0):
        oof = np.full(len(rows), np.nan)
        for fold in held:
            train = data.take(np.setdiff1d(rows, fold))
            predict = _tfidf_fit(train, tokens, c, seed)
            oof[np.searchsorted(rows, fold)] = predict(data.take(fold).texts)
        auc = float(roc_auc_score(y, oof))
        best = max(best, (auc, c, oof), key=lambda b: b[0])
    predict = _tfidf_fit(data.take(rows), tokens, best[1], seed)
    info = {"C": best[1], "oof_roc_auc": best[0], "seconds": round(time.perf_counter() - t0, 1)}
    return best[2], predict, info


def _tfidf_fit(part: LabelledTexts, tokens: Callable[[str], list[str]], c: float,
               seed: int) -> Callable[[list[str]], npt.NDArray[np.float64]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(tokenizer=tokens, lowercase=False, token_pattern=None,
                          ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
    clf.fit(vec.fit_transform(part.texts), part.labels)
    return lambda texts: np.asarray(clf.predict_proba(vec.transform(texts))[:, 1], dtype=np.float64)


def release_spec(cfg: SentimentConfig, prep: Prepared, fitted: FitResult, results: dict[str, Any],
                 data_desc: dict[str, Any], embeddings_coverage: float | None,
                 calibration: dict[str, Any] | None = None) -> ReleaseSpec:
    # a refit's "val" part is its training rows, scored out of fold
    counts = {k: {"n": len(v.labels), "negative": int(v.labels.sum())} for k, v in prep.parts.items()
              if not (cfg.refit_folds and k == "val")}
    training = {"data": data_desc, "split": list(cfg.split), "split_rule": "stratified random, seeded",
                "counts": counts, **{k: v for k, v in asdict(cfg).items() if k != "split"},
                "embeddings_coverage": embeddings_coverage, "epochs_trained": len(fitted.history["loss"]),
                "best_epoch": fitted.best_epoch, "train_seconds": round(fitted.seconds, 1), **fitted.extra,
                "history": fitted.history,
                "label": "1 = negative; output p_negative", "class_weights": class_weights(
                    prep.parts["train"].labels)}
    lstm = results["lstm"]
    return ReleaseSpec(
        name=SENTIMENT_MODEL, kind="sentiment",
        inputs=[TensorSpec("tokens", "int64", [None, prep.tokenizer.width])],
        outputs=[TensorSpec("p_negative", "float32", [None, 1])],
        preprocessing=prep.tokenizer.params(VOCAB_FILE),
        thresholds={"escalation": lstm["threshold"]},  # the rule is in metrics.threshold_rule
        training=training,
        metrics={"test": lstm, "baseline_tfidf_logreg": results["baseline"],
                 "validation": results.get("validation", {}),
                 "calibration": results.get("calibration", {}),
                 "threshold_rule": threshold_rule(cfg, bool(calibration))},
        calibration=calibration or {})


def threshold_rule(cfg: SentimentConfig, calibrated: bool) -> str:
    """The escalation threshold's rule in words, for the manifest."""
    where = (f"out-of-fold (K={cfg.refit_folds}, over train + validation)" if cfg.refit_folds
             else "validation")
    bound = (f"'s one-sided {cfg.recall_confidence:.0%} Wilson lower bound" if cfg.recall_confidence
             else "")
    return (f"highest threshold with {where} negative recall{bound} >= {cfg.target_recall}"
            + (" (calibrated p_negative)" if calibrated else ""))


def vocab_bytes(tokenizer: Tokenizer) -> bytes:
    return json.dumps(list(tokenizer.vocab), ensure_ascii=False).encode("utf-8")


def reliability_curves(y: npt.NDArray[np.int64], probs: dict[str, Any]) -> dict[str, Any]:
    if "raw" not in probs:
        return {"LSTM": (y, probs["lstm"]), "TF-IDF + LR": (y, probs["baseline"])}
    return {"LSTM (calibrated)": (y, probs["lstm"]), "LSTM (raw sigmoid)": (y, probs["raw"]),
            "TF-IDF + LR (calibrated)": (y, probs["baseline"])}


def write_reports(fitted: FitResult, prep: Prepared, probs: dict[str, Any], results: dict[str, Any],
                  report_dir: Path) -> list[Path]:
    """Loss curves, confusion matrix at the threshold, ROC vs baseline, hidden-state PCA."""
    from training import reports
    from training.models import encoder_model

    y = prep.parts["test"].labels
    lstm = results["lstm"]
    cm = lstm["confusion_matrix"]
    paths = [reports.loss_curves(fitted.history, report_dir / "sentiment_loss.png",
                                 "Sentiment model: weighted binary cross-entropy"),
             reports.confusion_matrix(cm["rows_true_cols_pred"], cm["labels"],
                                      report_dir / "sentiment_cm.png",
                                      f"LSTM on test, threshold {lstm['threshold']:.3f}"),
             reports.roc_curves({"LSTM": (y, probs["lstm"]), "TF-IDF + LR": (y, probs["baseline"])},
                                report_dir / "sentiment_roc.png", "ROC on test (dot = escalation threshold)",
                                {"LSTM": lstm["threshold"], "TF-IDF + LR": results["baseline"]["threshold"]}),
             reports.reliability_diagram(reliability_curves(y, probs),
                                         report_dir / "sentiment_reliability.png",
                                         "Reliability on test (15 bins)")]
    states = np.asarray(encoder_model(fitted.model).predict(prep.encoded["test"], batch_size=512, verbose=0))
    if states.ndim == 3:
        states = states[:, -1, :]
    paths.append(reports.hidden_state_pca(states, y.astype(np.float64),
                                          report_dir / "sentiment_hidden_pca.png",
                                          "LSTM final state of test reviews (PCA)",
                                          "true label (1 = negative)"))
    return paths
