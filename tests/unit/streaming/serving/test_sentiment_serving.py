"""Serving a wide-and-deep sentiment release: n-gram features reach the graph, calibration in numpy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.calibration import CALIBRATION_ID, sigmoid
from export.errors import ModelError
from export.manifest import (
    SENTIMENT_MODEL,
    Manifest,
    TensorSpec,
    content_version,
    utc_now_iso,
    write_model_dir,
)
from export.tokenizer import NgramHasher, Tokenizer, build_vocab
from streaming.serving.inference import load_sentiment

TEXTS = ["not good at all", "this is good", "good", "it is not what i wanted"]


def _tokenizer() -> Tokenizer:
    vocab = build_vocab(TEXTS, min_count=1)
    return Tokenizer(vocab, max_len=6, ngrams=NgramHasher(len(vocab), 31, 2, 6))


def _graph(tok: Tokenizer, not_good: int) -> bytes:
    """logit = weight of the "not good" bigram feature, summed over a row's features."""
    assert tok.ngrams is not None
    w = np.zeros(tok.ngrams.n_features, dtype=np.float32)
    w[not_good] = 4.0
    x = helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", tok.width])
    y = helper.make_tensor_value_info("p_negative", TensorProto.FLOAT, ["batch", 1])
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([1], np.int64), "axes"),
             numpy_helper.from_array(np.array([tok.max_len], np.int64), "start"),
             numpy_helper.from_array(np.array([tok.width], np.int64), "stop")]
    nodes = [helper.make_node("Slice", ["tokens", "start", "stop", "axes"], ["feats"]),
             helper.make_node("Gather", ["w", "feats"], ["per_feature"]),
             helper.make_node("ReduceSum", ["per_feature", "axes"], ["logit"], keepdims=1),
             helper.make_node("Sigmoid", ["logit"], ["p_negative"])]
    model = helper.make_model(helper.make_graph(nodes, "tiny_wide", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _release(root: Path, calibration: dict[str, object]) -> tuple[Path, Tokenizer, int]:
    tok = _tokenizer()
    not_good = int(tok.encode(["not good"])[0, -1])  # the last column is the last bigram's feature
    assert not_good >= len(tok.vocab)
    data = _graph(tok, not_good)
    manifest = Manifest(name=SENTIMENT_MODEL, version=content_version(data), kind="sentiment",
                        inputs=[TensorSpec("tokens", "int64", [None, tok.width])],
                        outputs=[TensorSpec("p_negative", "float32", [None, 1])],
                        preprocessing=tok.params("vocab.json"), onnx_sha256=hashlib.sha256(data).hexdigest(),
                        thresholds={"escalation": 0.5}, calibration=calibration, created=utc_now_iso())
    vocab = {"vocab.json": json.dumps(list(tok.vocab)).encode()}
    return write_model_dir(root, manifest, data, vocab), tok, not_good


def test_bigram_features_reach_the_graph_and_calibration_is_applied(tmp_path: Path) -> None:
    cal = {"id": CALIBRATION_ID, "temperature": 2.0, "bias": 1.0}
    model_dir, _, _ = _release(tmp_path, cal)
    clf = load_sentiment(model_dir)
    p = clf.predict(["not good at all", "this is good", "good not"])
    # raw logits 4, 0, 0 -> calibrated sigmoid((logit - 1) / 2)
    assert p == pytest.approx(sigmoid((np.array([4.0, 0.0, 0.0]) - 1.0) / 2.0), rel=1e-6)


def test_uncalibrated_release_serves_the_raw_sigmoid(tmp_path: Path) -> None:
    model_dir, _, _ = _release(tmp_path, {})
    p = load_sentiment(model_dir).predict(["not good at all", "good"])
    assert p == pytest.approx(sigmoid(np.array([4.0, 0.0])), rel=1e-6)


def test_unknown_calibration_is_refused_at_load(tmp_path: Path) -> None:
    model_dir, _, _ = _release(tmp_path, {"id": "isotonic_v9"})
    with pytest.raises(ModelError, match="calibration"):
        load_sentiment(model_dir)
