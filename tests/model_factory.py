"""Tiny but real ONNX models of the served shapes, built with onnx.helper.

They let tests run the worker's real loading and inference path before (and
independently of) the trained releases; outputs are computed by onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.manifest import (
    FORECAST_MODEL,
    SENTIMENT_MODEL,
    Manifest,
    TensorSpec,
    content_version,
    utc_now_iso,
    write_model_dir,
)
from export.preprocessing import DEFAULT_SCALE, NORMALISATION_ID
from export.tokenizer import OOV_TOKEN, PAD_TOKEN, Tokenizer

NEGATIVE_WORDS = ["terrible", "awful", "broken", "refund", "worst", "cancel", "bad", "disappointed"]
POSITIVE_WORDS = ["great", "love", "excellent", "perfect", "good", "happy", "beautiful", "thanks"]


def forecast_onnx(weight: float = 0.5) -> bytes:
    """forecast = weight * mean of the last 5 normalised prices (0 => persistence)."""
    x = helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", 60, 1])
    y = helper.make_tensor_value_info("forecast", TensorProto.FLOAT, ["batch", 1])
    inits = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in
             (("starts", [-5]), ("ends", [60]), ("axes", [1]))]
    inits.append(numpy_helper.from_array(np.array([weight], dtype=np.float32), "w"))
    nodes = [helper.make_node("Slice", ["window", "starts", "ends", "axes"], ["last5"]),
             helper.make_node("ReduceMean", ["last5"], ["mean"], axes=[1], keepdims=0),
             helper.make_node("Mul", ["mean", "w"], ["forecast"])]
    graph = helper.make_graph(nodes, "tiny_forecast", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def sentiment_onnx(vocab: list[str], max_len: int) -> bytes:
    """p_negative = sigmoid(sum of per-token weights - 1): a bag of words in ONNX."""
    weights = np.zeros(len(vocab), dtype=np.float32)
    for i, tok in enumerate(vocab):
        weights[i] = 3.0 if tok in NEGATIVE_WORDS else -3.0 if tok in POSITIVE_WORDS else 0.0
    x = helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", max_len])
    y = helper.make_tensor_value_info("p_negative", TensorProto.FLOAT, ["batch", 1])
    inits = [numpy_helper.from_array(weights, "emb"),
             numpy_helper.from_array(np.array([-1.0], dtype=np.float32), "bias")]
    nodes = [helper.make_node("Gather", ["emb", "tokens"], ["per_token"]),
             helper.make_node("ReduceSum", ["per_token", "axes1"], ["total"], keepdims=1),
             helper.make_node("Add", ["total", "bias"], ["logit"]),
             helper.make_node("Sigmoid", ["logit"], ["p_negative"])]
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"))
    graph = helper.make_graph(nodes, "tiny_sentiment", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _manifest(name: str, kind: str, data: bytes, inputs: list[TensorSpec],
              outputs: list[TensorSpec], pre: dict[str, object], thresholds: dict[str, float]) -> Manifest:
    import hashlib

    return Manifest(name=name, version=content_version(data), kind=kind,  # type: ignore[arg-type]
                    inputs=inputs, outputs=outputs, preprocessing=pre,
                    onnx_sha256=hashlib.sha256(data).hexdigest(), thresholds=thresholds,
                    training={"data": "tiny test model built with onnx.helper"},
                    created=utc_now_iso())


def write_tiny_forecast(root: Path, weight: float = 0.5) -> Path:
    data = forecast_onnx(weight)
    manifest = _manifest(FORECAST_MODEL, "forecast", data,
                         [TensorSpec("window", "float32", [None, 60, 1])],
                         [TensorSpec("forecast", "float32", [None, 1])],
                         {"id": NORMALISATION_ID, "window": 60, "scale": DEFAULT_SCALE}, {})
    return write_model_dir(root, manifest, data)


def write_tiny_sentiment(root: Path, max_len: int = 50, threshold: float = 0.5) -> Path:
    vocab = [PAD_TOKEN, OOV_TOKEN, *NEGATIVE_WORDS, *POSITIVE_WORDS, "the", "it", "is", "was"]
    tok = Tokenizer(vocab, max_len=max_len)
    data = sentiment_onnx(vocab, max_len)
    manifest = _manifest(SENTIMENT_MODEL, "sentiment", data,
                         [TensorSpec("tokens", "int64", [None, max_len])],
                         [TensorSpec("p_negative", "float32", [None, 1])],
                         tok.params("vocab.json"), {"escalation": threshold})
    import json

    return write_model_dir(root, manifest, data, {"vocab.json": json.dumps(vocab).encode()})


def write_tiny_models(root: Path) -> Path:
    write_tiny_forecast(root)
    write_tiny_sentiment(root)
    return root
