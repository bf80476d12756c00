"""The one tokeniser: deterministic vocabulary, OOV handling, left padding and truncation."""

from __future__ import annotations

from pathlib import Path

from export.tokenizer import OOV_ID, PAD_ID, Tokenizer, build_vocab, load_tokenizer

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
