"""Keras layers of the wide-and-deep sentiment model (serialisable, ONNX-convertible).

Imported by :mod:`training.models` when it builds the model and by
``sentinel export`` before loading a saved run, so ``model.keras`` round-trips.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sentinel")
class Columns(keras.layers.Layer):
    """``x[:, start:stop]`` of the single int64 input (token ids, or n-gram features)."""

    def __init__(self, start: int, stop: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, x: Any) -> Any:
        return x[:, self.start:self.stop]

    def compute_output_shape(self, shape: Any) -> Any:
        stop = shape[1] if self.stop is None else self.stop
        return (shape[0], None if stop is None else stop - self.start)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="sentinel")
class HashedLinear(keras.layers.Layer):
    """The wide branch: one weight per n-gram feature, summed over a text's features.

    ``logit = sum_j w[f_j] * idf[f_j] / sqrt(sum_j idf[f_j]^2)`` over the text's feature
    occurrences ``f_j``, padding (0) ignored: a linear model on TF-IDF-weighted counts,
    length-normalised, as Gather + ReduceSum in ONNX. ``idf`` is a constant set from the
    training texts (all ones until then: plain counts over sqrt(count)).
    """

    def __init__(self, n_features: int, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_features, self.l2 = n_features, l2

    def build(self, shape: Any) -> None:
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        self.w = self.add_weight(shape=(self.n_features,), initializer="zeros", regularizer=reg, name="w")
        self.idf = self.add_weight(shape=(self.n_features,), initializer="ones", trainable=False, name="idf")

    def call(self, ids: Any) -> Any:
        value = ops.take(self.idf, ids, axis=0) * ops.cast(ops.greater(ids, 0), "float32")
        norm = ops.sqrt(ops.maximum(ops.sum(value * value, axis=1, keepdims=True), 1e-12))
        return ops.sum(ops.take(self.w, ids, axis=0) * value, axis=1, keepdims=True) / norm

    def compute_output_shape(self, shape: Any) -> Any:
        return (shape[0], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_features": self.n_features, "l2": self.l2}
