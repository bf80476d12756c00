"""GloVe-format loading on a tiny generated file."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from training.embeddings import load_glove
from training.errors import DataError

VOCAB = ["<pad>", "<oov>", "good", "bad", "zebra"]


def test_known_words_get_their_vectors_and_pad_is_zero(tmp_path: Path) -> None:
    path = tmp_path / "glove.3d.txt"
    path.write_text("good 0.1 0.2 0.3\nbad -0.1 -0.2 -0.3\nunused 9 9 9\n", encoding="utf-8")
    matrix, coverage = load_glove(path, VOCAB)
    assert matrix.shape == (5, 3) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[2], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(matrix[3], [-0.1, -0.2, -0.3])
    assert not matrix[0].any() and matrix[4].any()  # pad zero, missing word random
    assert coverage == pytest.approx(2 / 3)


def test_gzip_and_word2vec_header_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "vectors.txt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("2 2\ngood 1 2\nzebra 3 4\n")
    matrix, _ = load_glove(path, VOCAB)
    np.testing.assert_allclose(matrix[4], [3, 4])


def test_ragged_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("good 1 2 3\nbad 1 2\n")
    with pytest.raises(DataError, match="expected 3 values"):
        load_glove(path, VOCAB)


def test_corpus_vectors_round_trip_through_the_glove_format(tmp_path: Path) -> None:
    from export.tokenizer import Tokenizer, build_vocab
    from training.word_vectors import cooccurrence, ppmi_svd, write_glove

    texts = ["good film great acting", "bad film awful plot", "great plot good acting",
             "awful acting bad film"] * 5
    vocab = build_vocab(texts, min_count=1)
    tok = Tokenizer(vocab)
    vectors = ppmi_svd(cooccurrence([tok.ids(t) for t in texts], len(vocab), window=2), dim=3)
    assert vectors.shape == (len(vocab), 3) and np.isfinite(vectors).all()
    write_glove(tmp_path / "v.txt", vocab[2:], vectors[2:])
    matrix, coverage = load_glove(tmp_path / "v.txt", vocab)
    assert coverage == 1.0
    np.testing.assert_allclose(matrix[2:], vectors[2:], atol=1e-4)
