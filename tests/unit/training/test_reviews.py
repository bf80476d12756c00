"""Review loading: text columns, rating/label rules, neutral rows dropped, stratified split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.errors import DataError
from training.reviews import LabelRule, labels_from, read_reviews, split_columns, stratified_split

NEG = ("terrible", "broken", "refund", "awful", "returned")  # the negative words of conftest.review_rows


def test_title_and_body_are_joined_and_neutral_ratings_dropped(reviews_csv: Path) -> None:
    data = read_reviews(reviews_csv, ["Title,Review Text"], "Rating")
    assert data.description["text_columns"] == ["Title", "Review Text"]
    assert all(t.startswith("title ") for t in data.texts)
    assert data.description["used"] < 400  # rating 3 and the empty row are gone
    neg = [t for t, y in zip(data.texts, data.labels, strict=True) if y == 1]
    assert neg and all(any(w in t for w in NEG) for t in neg)


def test_label_rules() -> None:
    rule = LabelRule(positive=4, negative=2)
    ratings = labels_from(pd.Series(["1", "2", "3", "4", "5"]), rule)
    assert np.isnan(ratings[2]) and ratings.tolist()[:2] == [1, 1] and ratings.tolist()[3:] == [0, 0]
    words = labels_from(pd.Series(["pos", "NEG", "positive", "negative", "1", "0", "meh"]), rule)
    assert words.tolist()[:6] == [0, 1, 0, 1, 0, 1] and np.isnan(words[6])
    assert split_columns(["a,b", "c"]) == ["a", "b", "c"]


def test_missing_columns_are_reported(reviews_csv: Path) -> None:
    with pytest.raises(DataError, match="nope"):
        read_reviews(reviews_csv, ["nope"], "Rating")


def test_limit_is_a_seeded_sample(reviews_csv: Path) -> None:
    a = read_reviews(reviews_csv, limit=50, seed=1)
    b = read_reviews(reviews_csv, limit=50, seed=1)
    assert len(a.texts) == 50 and a.texts == b.texts


def test_stratified_split_is_disjoint_and_keeps_the_class_ratio() -> None:
    labels = np.array([1] * 100 + [0] * 900)
    parts = stratified_split(labels, seed=3)
    idx = np.concatenate(list(parts.values()))
    assert len(idx) == len(set(idx.tolist())) == 1000
    for part in parts.values():
        assert abs(labels[part].mean() - 0.1) < 0.01
