"""Keras model builders: one function per model kind, architecture chosen by name.

The recurrent layer whose state summarises the input is always named ``encoder``,
so reports can read hidden states without knowing the architecture.
Input tensor names match the ONNX contract (``window``, ``tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FORECAST_ARCHS = ("lstm", "stacked", "bidirectional")
SENTIMENT_ARCHS = ("lstm", "bidirectional")


@dataclass
class FitResult:
    """A fitted Keras model with its per-epoch history and wall time."""

    model: Any
    history: dict[str, list[float]]
    seconds: float
    best_epoch: int
    extra: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Python, numpy and TensorFlow seeds in one call (runs repeat within CPU float noise)."""
    import keras

    keras.utils.set_random_seed(seed)


def build_forecast_model(arch: str = "lstm", window: int = 60, units: int = 100, dropout: float = 0.0,
                         learning_rate: float = 1e-3) -> Any:
    """LSTM(units) + Dense(1) (the reference), a 2-layer stack, or a bidirectional LSTM."""
    import keras
    from keras import layers

    if arch not in FORECAST_ARCHS:
        raise ValueError(f"unknown forecast architecture {arch!r}")
    inp = keras.Input((window, 1), name="window")
    x = inp
    if arch == "stacked":
        x = layers.LSTM(units, return_sequences=True, dropout=dropout, name="lstm_1")(x)
    lstm = layers.LSTM(units, dropout=dropout, name="encoder" if arch != "bidirectional" else "lstm")
    x = layers.Bidirectional(lstm, name="encoder")(x) if arch == "bidirectional" else lstm(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    out = layers.Dense(1, name="forecast")(x)
    model = keras.Model(inp, out, name=f"forecast_{arch}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def build_sentiment_model(vocab_size: int, max_len: int, arch: str = "lstm", embed_dim: int = 100,
                          units: int = 64, dropout: float = 0.3, learning_rate: float = 1e-3,
                          embedding_matrix: npt.NDArray[np.float32] | None = None) -> Any:
    """Embedding(vocab, embed_dim) + (Bi)LSTM(units, dropout) + Dense(sigmoid) -> ``p_negative``.

    No masking: inputs are left-padded, so a forward LSTM ends on real tokens, and the
    graph converts to ONNX's fused LSTM op (a masked LSTM becomes a slow ONNX Loop).
    """
    import keras
    from keras import layers

    if arch not in SENTIMENT_ARCHS:
        raise ValueError(f"unknown sentiment architecture {arch!r}")
    init: Any = "uniform"
    if embedding_matrix is not None:
        if embedding_matrix.shape != (vocab_size, embed_dim):
            raise ValueError(f"embedding matrix {embedding_matrix.shape} != ({vocab_size}, {embed_dim})")
        init = keras.initializers.Constant(embedding_matrix)
    inp = keras.Input((max_len,), dtype="int64", name="tokens")
    x = layers.Embedding(vocab_size, embed_dim, embeddings_initializer=init, name="embedding")(inp)
    lstm = layers.LSTM(units, dropout=dropout, name="encoder" if arch == "lstm" else "lstm")
    x = layers.Bidirectional(lstm, name="encoder")(x) if arch == "bidirectional" else lstm(x)
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(1, activation="sigmoid", name="p_negative")(x)
    model = keras.Model(inp, out, name=f"sentiment_{arch}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    return model


def tensorboard_callback(log_dir: Any) -> Any:
    """TensorBoard logging, or a one-line error if the optional package is missing."""
    import importlib.util

    import keras

    from training.errors import SentinelError

    if importlib.util.find_spec("tensorboard") is None:
        raise SentinelError("--tensorboard needs the tensorboard package: pip install tensorboard")
    return keras.callbacks.TensorBoard(str(log_dir))


def encoder_model(model: Any) -> Any:
    """A model mapping the same input to the ``encoder`` layer's final hidden state."""
    import keras

    return keras.Model(model.inputs, model.get_layer("encoder").output)
