"""The one tokeniser: deterministic vocabulary, OOV handling, left padding and truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.tokenizer import (
    NGRAM_TOKENIZER_ID,
    OOV_ID,
    PAD_ID,
    NgramHasher,
    Tokenizer,
    build_vocab,
    load_tokenizer,
)

TEXTS = ["Great dress, LOVE it", "terrible fit; sent it back", "love the colour", "it's great<br />really"]


def test_vocab_is_deterministic_and_ranked() -> None:
    a = build_vocab(TEXTS, min_count=1)
    b = build_vocab(list(reversed(TEXTS)), min_count=1)
    assert a == b
    assert a[:5] == ["<pad>", "<oov>", "great", "it", "love"]  # by count, ties alphabetical
    assert build_vocab(TEXTS, max_size=4, min_count=1) == a[:4]


def test_unknown_words_map_to_oov_and_padding_is_on_the_left() -> None:
    tok = Tokenizer(build_vocab(TEXTS, min_count=1), max_len=6)
    ids = tok.encode(["love zebra"])[0]
    assert ids.tolist()[:4] == [PAD_ID] * 4
    assert ids[-1] == OOV_ID and ids[-2] == tok.vocab.index("love")


def test_long_texts_keep_their_last_tokens() -> None:
    tok = Tokenizer(build_vocab(TEXTS, min_count=1), max_len=2)
    assert tok.encode(["great love it"])[0].tolist() == [tok.vocab.index("love"), tok.vocab.index("it")]


def test_saved_vocab_reloads_identically(tmp_path: Path) -> None:
    tok = Tokenizer(build_vocab(TEXTS, min_count=1), max_len=8)
    tok.save_vocab(tmp_path / "vocab.json")
    again = load_tokenizer(tmp_path / "vocab.json", 8)
    assert (again.encode(TEXTS) == tok.encode(TEXTS)).all()
    assert tok.tokens("It's GREAT<br />x") == ["it's", "great", "x"]


def _ngram_tokenizer(max_len: int = 6, max_n: int = 2, window: int | None = None) -> Tokenizer:
    vocab = build_vocab([*TEXTS, "not good at all", "this is not good"], min_count=1)
    return Tokenizer(vocab, max_len=max_len, ngrams=NgramHasher(len(vocab), 97, max_n, window or max_len))


def test_ngram_rows_are_tokens_then_features() -> None:
    tok = _ngram_tokenizer(max_len=6, max_n=3)
    out = tok.encode(["this is not good", "love"])
    assert out.shape == (2, 6 + 6 + 5 + 4) == (2, tok.width)
    assert (out[:, :6] == Tokenizer(tok.vocab, max_len=6).encode(["this is not good", "love"])).all()
    unigrams, bigrams, trigrams = out[:, 6:12], out[:, 12:17], out[:, 17:21]
    assert (unigrams == out[:, :6]).all()  # unigram features are the word ids
    assert (bigrams[0, :2] == 0).all() and (bigrams[0, 2:] >= len(tok.vocab)).all()  # 3 real bigrams
    assert (trigrams[0, :2] == 0).all() and (trigrams[0, 2:] > 0).all()
    assert (out[1, 12:] == 0).all()  # one word: no 2- or 3-grams, only padding
    assert out.max() < tok.ngrams.n_features  # type: ignore[union-attr]


def test_same_ngram_same_feature_in_any_text_and_position() -> None:
    tok = _ngram_tokenizer(max_len=8)
    a, b = tok.encode(["not good at all", "this is not good"])
    bigram_a = set(a[16:].tolist()) - {0}
    bigram_b = set(b[16:].tolist()) - {0}
    assert len(bigram_a & bigram_b) == 1  # "not good"
    assert tok.encode(["not good at all"])[0].tolist() == a.tolist()  # batch-independent


def test_ngram_hash_is_pinned() -> None:
    """Serving must hash as training did: a change here invalidates every released model."""
    hasher = NgramHasher(vocab_size=1000, buckets=1 << 17, max_n=3, window=4)
    feats = hasher.features(np.array([[0, 5, 6, 7]], dtype=np.int64))[0].tolist()
    assert feats[:4] == [0, 5, 6, 7] and feats[4] == 0 and feats[7] == 0
    assert feats == [0, 5, 6, 7, 0, 23112, 54512, 0, 94675]

    def reference(ids: list[int]) -> int:  # the same hash in plain Python integers
        m = (1 << 64) - 1
        h = (len(ids) * 0x9E3779B97F4A7C15) & m
        for i in ids:
            h = ((h ^ i) * 0xBF58476D1CE4E5B9) & m
            h ^= h >> 31
        h = ((h * 0x94D049BB133111EB) & m) ^ (h >> 29)
        return 1000 + h % (1 << 17)

    assert feats[5:7] == [reference([5, 6]), reference([6, 7])] and feats[8] == reference([5, 6, 7])


def test_ngram_window_can_be_wider_than_the_sequence() -> None:
    tok = _ngram_tokenizer(max_len=2, window=5)
    out = tok.encode(["this is not good at"])
    assert out.shape == (1, 2 + 5 + 4)
    assert out[0, :2].tolist() == [tok.vocab.index("good"), tok.vocab.index("at")]
    assert out[0, 2:7].tolist() == [tok.vocab.index(w) for w in ["this", "is", "not", "good", "at"]]


def test_ngram_params_reload_identically(tmp_path: Path) -> None:
    tok = _ngram_tokenizer(max_len=8, max_n=3)
    tok.save_vocab(tmp_path / "vocab.json")
    params = tok.params()
    assert params["id"] == NGRAM_TOKENIZER_ID and params["ngrams"]["width"] == tok.width - 8  # type: ignore[index]
    again = load_tokenizer(tmp_path / "vocab.json", 8, ngrams=params["ngrams"])  # type: ignore[arg-type]
    assert (again.encode(TEXTS) == tok.encode(TEXTS)).all()
    with pytest.raises(ValueError, match="unsupported n-gram hash"):
        load_tokenizer(tmp_path / "vocab.json", 8, ngrams={**params["ngrams"], "hash": "python"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="vocab_size"):
        Tokenizer(tok.vocab, 8, ngrams=NgramHasher(len(tok.vocab) + 1, 97, 2, 8))
