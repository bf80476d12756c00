"""The wide branch's warm start: Naive-Bayes scaling changes the prior, never the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from training.sentiment import nb_ratio


def test_nb_ratio_is_large_for_features_that_separate_the_classes() -> None:
    # columns: only in negatives, only in positives, in both equally, never seen
    x = sparse.csr_matrix(np.array([[2, 0, 1, 0], [1, 0, 1, 0], [0, 3, 1, 0], [0, 1, 1, 0]], dtype=float))
    r = nb_ratio(x, np.array([1, 1, 0, 0]))
    assert r[0] == pytest.approx(r[1]) and r[0] > 1.0
    assert r[2] == pytest.approx(0.0) and r[3] == pytest.approx(0.0)


@pytest.mark.train
def test_nb_warm_start_is_the_regression_on_scaled_features(reviews_csv: Path) -> None:
    import keras
    from sklearn.linear_model import LogisticRegression

    from training import sentiment
    from training.models import build_sentiment_model
    from training.reviews import read_reviews

    data = read_reviews(reviews_csv, ["Title", "Review Text"], "Rating")
    cfg = sentiment.SentimentConfig(max_len=16, ngrams=2, ngram_buckets=512, units=4, embed_dim=8)
    prep = sentiment.prepare(data, cfg)
    hasher = prep.tokenizer.ngrams
    assert hasher is not None
    model = build_sentiment_model(len(prep.tokenizer.vocab), cfg.max_len, "lstm", 8, 4, 0.0, 1e-3, None,
                                  "maxmean", hasher.n_features, hasher.width)
    info = sentiment.init_wide(model, prep, seed=0, nb_options=(True,))
    assert info["nb_scale"] is True and len(info["tried"]) == 3
    # the same regression, fitted here on x * r, must be what the layer computes with coef * r
    ids = prep.encoded["val"][:, cfg.max_len:]
    idf = sentiment.wide_idf(prep.encoded["train"][:, cfg.max_len:], hasher.n_features)
    x_tr = sentiment.wide_matrix(prep.encoded["train"][:, cfg.max_len:], idf)
    scale = sparse.diags(sentiment.nb_ratio(x_tr, prep.parts["train"].labels))
    clf = LogisticRegression(C=info["C"], class_weight="balanced", max_iter=3000, random_state=0)
    clf.fit(x_tr @ scale, prep.parts["train"].labels)
    expected = clf.decision_function(sentiment.wide_matrix(ids, idf) @ scale) - clf.intercept_[0]
    wide = keras.Model(model.inputs, model.get_layer("wide_logit").output)
    got = np.asarray(wide.predict(prep.encoded["val"], verbose=0)).reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
