"""Keras -> ONNX conversion with a pinned opset, a dynamic batch and a TF/ONNX parity gate.

Keras 3 models are converted through a ``tf.function`` with an input signature
(tf2onnx's ``from_keras`` does not support Keras 3). TensorFlow and tf2onnx are
imported inside the functions only, so the serving install can import this module.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from export.errors import ModelError, ParityError
from export.manifest import TensorSpec, shapes_match

logger = logging.getLogger(__name__)

# Pinned: onnxruntime >= 1.17 runs it everywhere, and it has the fused LSTM op.
OPSET = 17
PARITY_TOLERANCE = 1e-4


def keras_to_onnx(model: Any, inp: TensorSpec, out: TensorSpec, opset: int = OPSET) -> bytes:
    """Serialized ONNX of ``model`` with tensor names/dtypes from the specs; batch stays dynamic."""
    import tensorflow as tf
    import tf2onnx

    # tf2onnx logs recoverable freezing retries (e.g. dropout seed state) as warnings: noise here.
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    shape = [None, *inp.shape[1:]]
    sig = [tf.TensorSpec(shape, tf.dtypes.as_dtype(inp.dtype), name=inp.name)]

    @tf.function(input_signature=sig)
    def serve(x: Any) -> dict[str, Any]:
        # A dict output names the ONNX output; training=False drops dropout.
        return {out.name: tf.cast(model(x, training=False), tf.dtypes.as_dtype(out.dtype))}

    try:
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=sig, opset=opset)
    except Exception as exc:  # tf2onnx raises assorted internal errors
        raise ModelError(f"tf2onnx conversion failed: {exc}") from exc
    data: bytes = proto.SerializeToString()
    check_graph(data, inp, out)
    return data


def check_graph(onnx_bytes: bytes, inp: TensorSpec, out: TensorSpec) -> None:
    """Refuse a graph whose single input/output differ from the manifest specs."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph
    for actual, spec in ((graph.input, inp), (graph.output, out)):
        if len(actual) != 1 or actual[0].name != spec.name:
            raise ModelError(f"ONNX graph tensors {[t.name for t in actual]} != [{spec.name!r}]")
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param
                for d in actual[0].type.tensor_type.shape.dim]
        if not shapes_match(spec.shape, dims):
            raise ModelError(f"ONNX tensor {spec.name} has shape {dims}, expected {spec.shape}")


def run_onnx(onnx_bytes: bytes, feed: npt.NDArray[Any], batch_size: int = 1024) -> npt.NDArray[np.float32]:
    """onnxruntime outputs for ``feed``, in batches (what the worker computes)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    parts = [session.run(None, {name: feed[i:i + batch_size]})[0] for i in range(0, len(feed), batch_size)]
    if not parts:
        return np.empty((0, 1), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


def parity(model: Any, onnx_bytes: bytes, batch: npt.NDArray[Any],
           tolerance: float = PARITY_TOLERANCE) -> dict[str, float | int]:
    """Max |TF - ONNX| on a held-out batch; raises :class:`ParityError` above ``tolerance``."""
    expected = np.asarray(model(batch, training=False), dtype=np.float64)
    actual = run_onnx(onnx_bytes, batch).astype(np.float64)
    if expected.shape != actual.shape:
        raise ParityError(f"output shapes differ: TF {expected.shape}, ONNX {actual.shape}")
    diff = float(np.max(np.abs(expected - actual))) if len(batch) else 0.0
    if not np.isfinite(diff) or diff > tolerance:
        raise ParityError(f"TF/ONNX max abs diff {diff:.3g} exceeds {tolerance:g} on {len(batch)} inputs")
    logger.info("parity max_abs_diff=%.3g n=%d", diff, len(batch))
    return {"max_abs_diff": diff, "n": len(batch), "tolerance": tolerance}


def convert_checked(model: Any, inp: TensorSpec, out: TensorSpec, batch: npt.NDArray[Any],
                    opset: int = OPSET) -> tuple[bytes, dict[str, float | int]]:
    """Convert, then gate on parity: the only way training produces shippable bytes."""
    data = keras_to_onnx(model, inp, out, opset)
    return data, parity(model, data, batch)
