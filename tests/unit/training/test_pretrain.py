"""Language-model pretraining: targets, corpus hygiene (no test text), caching, and the release path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from export.tokenizer import OOV_ID
from training.errors import DataError
from training.pretrain import lm_arrays, parse_corpus, read_corpus


def test_lm_targets_are_next_words_and_padding_is_weightless() -> None:
    ids = np.array([[0, 0, 5, 9, 3], [7, 2, 4, 8, 6]])
    x, y, w = lm_arrays(ids, out_vocab=8)
    assert x.tolist() == [[0, 0, 5, 9], [7, 2, 4, 8]]
    # ids >= out_vocab are predicted as <oov>; inputs keep them
    assert y.tolist() == [[0, 5, OOV_ID, 3], [2, 4, OOV_ID, 6]]
    assert w.tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]


def test_corpus_spec_and_test_texts_left_out(tmp_path: Path) -> None:
    path = tmp_path / "c.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write('Title,Review Text,x\nA,"one two",1\nB,"three",2\n,,3\nC,"four five",4\n')
    assert parse_corpus(f"{path}:Title,Review Text") == (path, ["Title", "Review Text"])
    assert parse_corpus(str(path)) == (path, [])
    assert read_corpus([str(path)], exclude={"b  THREE"}) == ["A one two", "C four five"]
    # the labelled file is read with its own columns, so its test texts are always recognised
    assert read_corpus([f"{path}:Review Text"], exclude={"B three"},
                       labelled=("c.csv.gz", ["Title", "Review Text"])) == ["A one two", "C four five"]
    assert len(read_corpus([f"{path}:Title"], exclude=set(), max_texts=2, seed=1)) == 2
    with pytest.raises(DataError, match="not found"):
        read_corpus([f"{path}:nope"], exclude=set())
    with pytest.raises(DataError, match="no such corpus"):
        read_corpus([str(tmp_path / "missing.csv")], exclude=set())


@pytest.mark.train
def test_pretrained_release_is_cached_and_recorded(reviews_csv: Path, tmp_path: Path) -> None:
    from export.manifest import read_manifest
    from tests.unit.training.test_train_commands import _run

    cache = tmp_path / "lm"
    argv = ["train", "sentiment", "--csv", str(reviews_csv), "--text-col", "Title,Review Text",
            "--label-col", "Rating", "--epochs", "2", "--max-len", "16", "--embed-dim", "8", "--units", "4",
            "--pooling", "maxmean", "--ngrams", "2", "--ngram-buckets", "512",
            "--pretrain", f"{reviews_csv}:Review Text", "--pretrain-epochs", "1", "--lm-cache", str(cache)]
    assert _run([*argv, "--export-to", str(tmp_path / "m1"), "--run-dir", str(tmp_path / "r1")]) == 0
    [info_file] = cache.glob("*.json")
    info = json.loads(info_file.read_text())
    # 400 rows (80 neutral) + 1 empty; the 15 % test part of the 320 labelled never enters the LM
    assert 300 <= info["texts"] <= 400 - 48 and info["tokens"] > 0 and np.isfinite(info["val_perplexity"])
    assert _run([*argv, "--export-to", str(tmp_path / "m2"), "--run-dir", str(tmp_path / "r2")]) == 0
    assert len(list(cache.glob("*.npz"))) == 1
    [first] = (tmp_path / "m1" / "feedback-sentiment").iterdir()
    [second] = (tmp_path / "m2" / "feedback-sentiment").iterdir()
    assert read_manifest(first).training["pretraining"]["cached"] is False
    assert read_manifest(second).training["pretraining"]["cached"] is True
