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
SENTIMENT_POOLING = ("last", "maxmean")


@dataclass
class FitResult:
    """A fitted Keras model with its per-epoch history and wall time."""

    model: Any
    history: dict[str, list[float]]
    seconds: float
    best_epoch: int
    extra: dict[str, Any] = field(default_factory=dict)
    training_model: Any = None  # when training used extra heads (sentiment aux heads)


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
                          embedding_matrix: npt.NDArray[np.float32] | None = None, pooling: str = "last",
                          wide_features: int = 0, wide_width: int = 0, wide_l2: float = 0.0) -> Any:
    """Embedding(vocab, embed_dim) + (Bi)LSTM(units, dropout) + Dense(sigmoid) -> ``p_negative``.

    ``pooling="maxmean"`` concatenates max and mean over all hidden states instead of the
    last state. With ``wide_features`` the input is ``max_len`` token ids followed by
    ``wide_width`` n-gram feature ids (see ``export.tokenizer.NgramHasher``), and a linear
    branch over those features adds its logit to the sequence branch's ("wide and deep",
    trained jointly, one graph).

    No masking: inputs are left-padded, so a forward LSTM ends on real tokens, and the
    graph converts to ONNX's fused LSTM op (a masked LSTM becomes a slow ONNX Loop).
    """
    import keras
    from keras import layers

    from training.wide import Columns, HashedLinear

    if arch not in SENTIMENT_ARCHS:
        raise ValueError(f"unknown sentiment architecture {arch!r}")
    if pooling not in SENTIMENT_POOLING:
        raise ValueError(f"unknown pooling {pooling!r}")
    init: Any = "uniform"
    if embedding_matrix is not None:
        if embedding_matrix.shape != (vocab_size, embed_dim):
            raise ValueError(f"embedding matrix {embedding_matrix.shape} != ({vocab_size}, {embed_dim})")
        init = keras.initializers.Constant(embedding_matrix)
    wide = wide_features > 0
    inp = keras.Input((max_len + (wide_width if wide else 0),), dtype="int64", name="tokens")
    tokens = Columns(0, max_len, name="word_ids")(inp) if wide else inp
    x = layers.Embedding(vocab_size, embed_dim, embeddings_initializer=init, name="embedding")(tokens)
    seq = pooling != "last"
    lstm = layers.LSTM(units, dropout=dropout, return_sequences=seq,
                       name="encoder" if arch == "lstm" else "lstm")
    x = layers.Bidirectional(lstm, name="encoder")(x) if arch == "bidirectional" else lstm(x)
    if seq:
        x = layers.Concatenate(name="pooled")([layers.GlobalMaxPooling1D(name="max_pool")(x),
                                               layers.GlobalAveragePooling1D(name="mean_pool")(x)])
    x = layers.Dropout(dropout)(x)
    if not wide:
        out = layers.Dense(1, activation="sigmoid", name="p_negative")(x)
    else:
        deep = layers.Dense(1, name="deep_logit")(x)
        ngrams = Columns(max_len, None, name="ngram_ids")(inp)
        linear = HashedLinear(wide_features, wide_l2, name="wide_logit")(ngrams)
        out = layers.Activation("sigmoid", name="p_negative")(layers.Add(name="logit")([deep, linear]))
    name = f"sentiment_{arch}" + ("" if pooling == "last" else f"_{pooling}") + ("_wide" if wide else "")
    model = keras.Model(inp, out, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    return model


def aux_training_model(model: Any, n_aux: int, learning_rate: float, ema: float = 0.0) -> Any:
    """A training model over ``model``'s layers: the main logit and ``n_aux`` auxiliary logits.

    Each auxiliary head is a Dense unit on the same pooled features plus the shared wide
    logit, so the wide weights and the encoder learn from every target while the exported
    graph (``model``) stays one output. Targets are packed as ``[targets | weights]``
    (see :func:`packed_logit_loss`); a weight of 0 masks an unknown target. ``ema`` > 0:
    the weights ``fit`` leaves are the exponential moving average of the steps' weights at
    that momentum (Polyak averaging), a one-model stand-in for an ensemble of nearby ones.
    """
    import keras
    from keras import layers

    names = {layer.name for layer in model.layers}
    if "wide_logit" not in names:
        raise ValueError("auxiliary heads need the wide branch (--ngrams > 0)")
    features = model.get_layer("deep_logit").input
    aux = keras.ops.add(layers.Dense(n_aux, name="aux_heads")(features), model.get_layer("wide_logit").output)
    heads = layers.Concatenate(name="heads")([model.get_layer("logit").output, aux])
    train = keras.Model(model.inputs, heads, name=f"{model.name}_aux{n_aux}")
    optimizer = keras.optimizers.Adam(learning_rate, use_ema=ema > 0, ema_momentum=ema if ema > 0 else 0.99)
    train.compile(optimizer=optimizer, loss=packed_logit_loss)
    return train


def packed_logit_loss(packed: Any, logits: Any) -> Any:
    """Weighted binary cross-entropy per row, summed over heads; ``packed = [targets | weights]``."""
    from keras import ops

    h = ops.shape(logits)[-1]
    target, weight = packed[:, :h], packed[:, h:]
    bce = ops.relu(logits) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(weight * bce, axis=-1)


def tensorboard_callback(log_dir: Any) -> Any:
    """TensorBoard logging, or a one-line error if the optional package is missing."""
    import importlib.util

    import keras

    from training.errors import SentinelError

    if importlib.util.find_spec("tensorboard") is None:
        raise SentinelError("--tensorboard needs the tensorboard package: pip install tensorboard")
    return keras.callbacks.TensorBoard(str(log_dir))


def encoder_model(model: Any) -> Any:
    """A model mapping the same input to the ``encoder`` layer's final hidden state.

    With pooling over all states, the pooled vector (``pooled``) stands for it.
    """
    import keras

    names = {layer.name for layer in model.layers}
    return keras.Model(model.inputs, model.get_layer("pooled" if "pooled" in names else "encoder").output)
