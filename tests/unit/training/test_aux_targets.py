"""Auxiliary targets: finer labels than the binary one, trained beside it, never exported."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from training.reviews import LabelRule, read_aux_targets, read_reviews
from training.sentiment import balanced_weights, packed_targets


@pytest.fixture
def rated_csv(tmp_path: Path) -> Path:
    path = tmp_path / "rated.csv.gz"
    rows = [",Title,Review Text,Rating,Recommended IND",
            '0,a,"awful broken",1,0', '1,b,"meh",2,0', '2,c,"okay i guess",3,1', '3,d,"nice",4,1',
            '4,e,"love it",5,1', '5,,,3,1', '6,f,"so so",3,0', '7,g,"great",5,']
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    return path


def test_aux_targets_line_up_with_the_labelled_rows_and_keep_the_neutral_ones(rated_csv: Path) -> None:
    data = read_reviews(rated_csv, ["Title", "Review Text"], "Rating")
    aux = read_aux_targets(rated_csv, ["Title", "Review Text"], "Rating", LabelRule(), "Recommended IND")
    # cuts at every rating but the label's own (<= 2) and the top one; then "not recommended"
    assert aux.names == ("Rating <= 1", "Rating <= 3", "Rating <= 4", "Recommended IND == 0")
    assert data.texts == ["a awful broken", "b meh", "d nice", "e love it", "g great"]
    cuts = [[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
    np.testing.assert_array_equal(aux.labelled[:, :3], cuts)
    np.testing.assert_array_equal(aux.labelled[:4, 3], [1, 1, 0, 0])
    assert np.isnan(aux.labelled[4, 3])  # empty flag: unknown, masked in training
    # rating-3 rows with text (row 5 has none) carry aux targets only
    assert aux.between_texts == ["c okay i guess", "f so so"]
    np.testing.assert_array_equal(aux.between, [[0, 1, 1, 0], [0, 1, 1, 1]])


def test_aux_targets_need_a_rating_column(tmp_path: Path) -> None:
    from training.errors import DataError

    path = tmp_path / "binary.csv"
    path.write_text("review,label\ngood,pos\nbad,neg\n")
    with pytest.raises(DataError, match="rating column"):
        read_aux_targets(path, ["review"], "label")


def test_packed_targets_balance_each_head_and_mask_unknowns() -> None:
    y_main = np.array([1.0, 0.0, 0.0, 0.0, np.nan])  # the last row is a rating-3 row
    aux = np.array([[1.0], [1.0], [0.0], [np.nan]], np.float32)
    between = np.array([[1.0]], np.float32)
    packed = packed_targets(y_main, aux, between, aux_weight=0.5)
    targets, weights = packed[:, :2], packed[:, 2:]
    np.testing.assert_array_equal(targets[:, 0], [1, 0, 0, 0, 0])
    # main: 1 negative and 3 positives known -> each class carries half of 4 rows
    np.testing.assert_allclose(weights[:, 0], [2.0, 2 / 3, 2 / 3, 2 / 3, 0.0], rtol=1e-6)
    # aux: 3 ones and 1 zero known (row 3 unknown), then halved by aux_weight
    np.testing.assert_allclose(weights[:, 1], [1 / 3, 1 / 3, 1.0, 0.0, 1 / 3], rtol=1e-6)
    assert balanced_weights(np.array([np.nan, np.nan])).sum() == 0.0


@pytest.mark.train
def test_aux_heads_train_and_the_exported_model_keeps_one_output(reviews_csv: Path) -> None:
    from training import sentiment

    # the shared fixture has no recommended flag: the rating cuts are the aux targets
    data = read_reviews(reviews_csv, ["Title", "Review Text"], "Rating")
    aux = read_aux_targets(reviews_csv, ["Title", "Review Text"], "Rating")
    cfg = sentiment.SentimentConfig(max_len=16, ngrams=2, ngram_buckets=512, units=4, embed_dim=8,
                                    pooling="maxmean", epochs=2, aux=True)
    plain = sentiment.prepare(data, cfg)
    prep = sentiment.prepare(data, cfg, aux)
    for part in ("val", "test"):  # the same held-out rows with or without aux targets
        assert prep.parts[part].texts == plain.parts[part].texts
    assert len(prep.encoded["between"]) == len(aux.between_texts) > 0
    fitted = sentiment.fit(cfg, prep)
    assert fitted.extra["aux_heads"] == list(aux.names)
    assert fitted.extra["wide_warm_start"]["heads"] == 1 + len(aux.names)
    assert len(fitted.history["val_auc"]) == len(fitted.history["loss"]) >= 1
    assert fitted.model.outputs[0].shape[-1] == 1 and len(fitted.model.outputs) == 1
    p = np.asarray(fitted.model.predict(prep.encoded["test"], verbose=0)).reshape(-1)
    assert np.all((p > 0) & (p < 1))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(prep.parts["test"].labels, p) > 0.9  # the fixture's signal is plain

    # folding heads into the export: the exported logit becomes the mean of the chosen heads'
    import keras

    x = prep.encoded["test"]
    heads = np.asarray(fitted.training_model.predict(x, verbose=0))
    chosen = (aux.names[0], aux.names[2])
    assert sentiment.fold_heads(fitted.model, fitted.training_model, aux.names, chosen) == list(chosen)
    logit = keras.Model(fitted.model.inputs, fitted.model.get_layer("logit").output)
    folded = np.asarray(logit.predict(x, verbose=0)).reshape(-1)
    np.testing.assert_allclose(folded, (heads[:, 0] + heads[:, 1] + heads[:, 3]) / 3, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="unknown aux heads"):
        sentiment.fold_heads(fitted.model, fitted.training_model, aux.names, ("nope",))
