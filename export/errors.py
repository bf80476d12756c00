"""Errors of the model contract, shared by training, export and serving."""

from __future__ import annotations


class SentinelError(Exception):
    """Base of every expected failure; the CLI prints it as one line."""


class ModelError(SentinelError):
    """A model directory, manifest or ONNX file that cannot be served."""

    def __init__(self, message: str, *, model_dir: object = None) -> None:
        self.model_dir = model_dir
        super().__init__(f"{message} (model_dir={model_dir})" if model_dir else message)


class ParityError(ModelError):
    """TensorFlow and onnxruntime disagree beyond tolerance: the export must not ship."""


class DataError(SentinelError):
    """Input data that cannot be used: missing file, bad CSV, no network for a download."""
