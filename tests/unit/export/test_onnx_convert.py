"""Keras -> ONNX export: one parametrised parity test on tiny models of both served kinds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from export.errors import ParityError
from export.manifest import TensorSpec

pytestmark = pytest.mark.train


def _forecast() -> tuple[Any, TensorSpec, TensorSpec, np.ndarray]:
    from training.models import build_forecast_model

    model = build_forecast_model("stacked", window=60, units=4, dropout=0.1)
    batch = np.random.default_rng(0).normal(0, 0.3, (16, 60, 1)).astype(np.float32)
    out = TensorSpec("forecast", "float32", [None, 1])
    return model, TensorSpec("window", "float32", [None, 60, 1]), out, batch


def _sentiment() -> tuple[Any, TensorSpec, TensorSpec, np.ndarray]:
    from training.models import build_sentiment_model

    model = build_sentiment_model(vocab_size=50, max_len=12, arch="bidirectional", embed_dim=6, units=4)
    batch = np.random.default_rng(0).integers(0, 50, (16, 12)).astype(np.int64)
    batch[:, :5] = 0  # left padding, as the tokeniser produces
    out = TensorSpec("p_negative", "float32", [None, 1])
    return model, TensorSpec("tokens", "int64", [None, 12]), out, batch


def _wide_deep() -> tuple[Any, TensorSpec, TensorSpec, np.ndarray]:
    """Token ids + hashed n-grams in one input; pooled BiLSTM beside a linear branch."""
    from export.tokenizer import NgramHasher
    from training.models import build_sentiment_model

    hasher = NgramHasher(vocab_size=50, buckets=64, max_n=2, window=12)
    model = build_sentiment_model(vocab_size=50, max_len=12, arch="bidirectional", embed_dim=6, units=4,
                                  pooling="maxmean", wide_features=hasher.n_features, wide_width=hasher.width)
    ids = np.random.default_rng(0).integers(2, 50, (16, 12)).astype(np.int64)
    ids[:, :5] = 0
    layer = model.get_layer("wide_logit")
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(0, 1, hasher.n_features).astype(np.float32),
                       rng.uniform(1, 5, hasher.n_features).astype(np.float32)])
    batch = np.concatenate([ids, hasher.features(ids)], axis=1)
    out = TensorSpec("p_negative", "float32", [None, 1])
    return model, TensorSpec("tokens", "int64", [None, 12 + hasher.width]), out, batch


@pytest.mark.parametrize("make", [_forecast, _sentiment, _wide_deep],
                         ids=["forecast", "sentiment", "wide_deep"])
def test_onnx_matches_keras_with_a_dynamic_batch(make: Any) -> None:
    from export.onnx_convert import convert_checked, parity, run_onnx

    model, inp, out, batch = make()
    data, figure = convert_checked(model, inp, out, batch)
    assert figure["n"] == 16 and figure["max_abs_diff"] <= 1e-4
    assert run_onnx(data, batch[:3]).shape == (3, 1)  # any batch size
    with pytest.raises(ParityError, match="exceeds"):
        parity(model, data, batch, tolerance=-1.0)  # the gate really compares
