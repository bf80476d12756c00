"""Cross-fitted release: the test rows stay those of the single split, every train + validation
row gets exactly one out-of-fold score, and the released model trains on all of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.reviews import read_aux_targets, read_reviews, stratified_split
from training.sentiment import SentimentConfig, refit_indices


def test_refit_folds_partition_train_and_validation_and_keep_the_test_rows() -> None:
    labels = (np.random.default_rng(0).random(1000) < 0.12).astype(np.int64)
    cfg = SentimentConfig(refit_folds=5, seed=7)
    rows, test, folds = refit_indices(labels, cfg)
    single = stratified_split(labels, cfg.split, cfg.seed)
    assert np.array_equal(np.sort(test), np.sort(single["test"]))
    assert np.array_equal(rows, np.sort(np.concatenate([single["train"], single["val"]])))
    together = np.concatenate(folds)
    assert len(together) == len(rows) and np.array_equal(np.sort(together), rows)
    share = labels[rows].mean()
    for fold in folds:  # stratified: each fold holds its share of the rare class
        assert abs(labels[fold].mean() - share) < 0.02


@pytest.mark.train
def test_cross_fit_scores_every_row_out_of_fold_and_refits_on_all(reviews_csv: Path) -> None:
    from training import sentiment

    data = read_reviews(reviews_csv, ["Title", "Review Text"], "Rating")
    aux = read_aux_targets(reviews_csv, ["Title", "Review Text"], "Rating")
    cfg = SentimentConfig(max_len=16, ngrams=2, ngram_buckets=512, units=4, embed_dim=8, pooling="maxmean",
                          epochs=2, patience=0, aux=True, refit_folds=3, wide_nb=(False,), wide_c=(1.0,))
    crossed = sentiment.cross_fit(data, cfg, aux, lambda c, p: (c, None, None))
    rows, test, folds = refit_indices(data.labels, cfg)
    assert len(crossed.folds) == 3 and sum(f["n"] for f in crossed.folds) == len(rows)
    assert not np.isnan(crossed.oof).any() and np.all((crossed.oof > 0) & (crossed.oof < 1))
    assert crossed.prep.parts["train"].texts == [data.texts[i] for i in rows]  # refit on every row
    assert crossed.prep.parts["test"].texts == [data.texts[i] for i in test]
    assert crossed.fitted.best_epoch == cfg.epochs and len(crossed.fitted.history["loss"]) == cfg.epochs
    assert "val_auc" not in crossed.fitted.history  # nothing held out to score the refit on
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(crossed.prep.parts["val"].labels, crossed.oof) > 0.9  # the fixture's signal is plain
    base_oof, predict, info = sentiment.tfidf_cross_fit(data, cfg, crossed.prep.tokenizer.tokens)
    assert base_oof.shape == crossed.oof.shape and info["oof_roc_auc"] > 0.9
    assert predict(crossed.prep.parts["test"].texts).shape == (len(test),)


@pytest.mark.train
def test_ema_ends_on_the_weight_average_and_scores_that_model_each_epoch(reviews_csv: Path) -> None:
    from dataclasses import replace

    from sklearn.metrics import roc_auc_score

    from training import sentiment
    from training.models import FitResult

    data = read_reviews(reviews_csv, ["Title", "Review Text"], "Rating")
    aux = read_aux_targets(reviews_csv, ["Title", "Review Text"], "Rating")
    cfg = SentimentConfig(max_len=16, ngrams=2, ngram_buckets=512, units=4, embed_dim=8, pooling="maxmean",
                          epochs=2, patience=0, aux=True, wide_nb=(False,), wide_c=(1.0,))
    prep = sentiment.prepare_parts(data, stratified_split(data.labels, cfg.split, cfg.seed), cfg, aux)
    plain, near, averaged = (sentiment.fit(replace(cfg, ema=m), prep) for m in (0.0, 1e-9, 0.9))

    def same(a: FitResult, b: FitResult) -> bool:
        pairs = zip(a.model.get_weights(), b.model.get_weights(), strict=True)
        return all(np.allclose(x, y, atol=1e-5) for x, y in pairs)

    assert same(plain, near)  # an average with no memory is the last step's weights: same training
    assert not same(plain, averaged)
    p = averaged.model.predict(prep.encoded["val"], verbose=0).reshape(-1)
    last = averaged.history["val_auc"][-1]  # the scored model is the one fit() returns
    assert last == pytest.approx(roc_auc_score(prep.parts["val"].labels, p), abs=1e-6)
