"""ONNX models in serving: verified loading, and the two predictors the agents call.

A model is served only if its manifest is complete, its sha256 matches, its graph
inputs/outputs match the manifest, and a probe batch runs. onnxruntime is wrapped in
a small ``Runner`` protocol so tests can count calls without faking results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from export.calibration import apply_calibration
from export.errors import ModelError
from export.manifest import Manifest, read_manifest, shapes_match, verify_hash
from export.preprocessing import NORMALISATION_ID, denormalise_forecasts, normalise_windows
from export.tokenizer import TOKENIZER_IDS, Tokenizer, load_tokenizer

logger = logging.getLogger(__name__)


class Runner(Protocol):
    def run(self, feed: npt.NDArray[Any]) -> npt.NDArray[np.float32]: ...


CHUNK_ROWS = 256  # onnxruntime's arena grows with the largest batch and never shrinks
WIDE_ROWS = 128  # from this many rows a call is worth a second intra-op thread


@dataclass(frozen=True)
class OnnxRunner:
    """One ``session.run`` per chunk of at most ``CHUNK_ROWS`` rows.

    Chunks bound the worker's memory (one 6,000-row call grew RSS to 1.7 GB) and are
    no slower per row. Large chunks go to ``wide``, a session with more intra-op
    threads, when there is one: single-tick batches keep the event loop's core free,
    bundles use both cores (docs/benchmarks.md).
    """

    session: ort.InferenceSession
    input_name: str
    output_name: str
    wide: ort.InferenceSession | None = None

    def run(self, feed: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        if len(feed) <= CHUNK_ROWS:
            return self._run(feed)
        return np.concatenate([self._run(feed[i:i + CHUNK_ROWS]) for i in range(0, len(feed), CHUNK_ROWS)])

    def _run(self, feed: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        session = self.wide if self.wide is not None and len(feed) >= WIDE_ROWS else self.session
        return session.run([self.output_name], {self.input_name: feed})[0]


def _session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _check_graph(session: ort.InferenceSession, manifest: Manifest, model_dir: Path) -> None:
    pairs = ((session.get_inputs(), manifest.inputs), (session.get_outputs(), manifest.outputs))
    for actual, declared in pairs:
        if len(actual) != len(declared):
            raise ModelError("graph inputs/outputs differ from the manifest", model_dir=model_dir)
        for a, d in zip(actual, declared, strict=True):
            if a.name != d.name or not shapes_match(d.shape, list(a.shape)):
                raise ModelError(f"graph tensor {a.name}{a.shape} does not match manifest "
                                 f"{d.name}{d.shape}", model_dir=model_dir)


def open_verified(model_dir: Path, kind: str, threads: int = 1,
                  wide_threads: int = 0) -> tuple[Manifest, OnnxRunner]:
    """``wide_threads`` > ``threads`` adds a session with that many threads for large batches."""
    manifest = read_manifest(model_dir)
    if manifest.kind != kind:
        raise ModelError(f"expected a {kind} model, manifest says {manifest.kind}", model_dir=model_dir)
    onnx_path = verify_hash(model_dir, manifest)
    try:
        session = _session(onnx_path, threads)
        wide = _session(onnx_path, wide_threads) if wide_threads > threads else None
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelError(f"onnxruntime cannot load the model: {exc}", model_dir=model_dir) from exc
    _check_graph(session, manifest, model_dir)
    return manifest, OnnxRunner(session, manifest.inputs[0].name, manifest.outputs[0].name, wide)


def sorted_versions(models_dir: Path, name: str) -> list[Path]:
    """Version directories with a manifest, oldest first (by manifest ``created``, then name)."""
    root = models_dir / name
    found: list[tuple[str, str, Path]] = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if (path / "manifest.json").is_file():
            try:
                found.append((read_manifest(path).created, path.name, path))
            except ModelError:
                found.append(("", path.name, path))
    return [p for _, _, p in sorted(found)]


def latest_version_dir(models_dir: Path, name: str) -> Path:
    found = sorted_versions(models_dir, name)
    if not found:
        raise ModelError(f"no {name} model under {models_dir / name}: train one (sentinel train) or set "
                         "SENTINEL_MODELS_DIR")
    return found[-1]


class Forecaster:
    """Next-step price forecasts for a batch of 60-price windows."""

    def __init__(self, manifest: Manifest, runner: Runner) -> None:
        pre = manifest.preprocessing
        if pre.get("id") != NORMALISATION_ID:
            raise ModelError(f"unsupported preprocessing {pre.get('id')!r}")
        self.manifest = manifest
        self.runner = runner
        self.window = int(pre["window"])
        self.scale = float(pre["scale"])
        self.ref = manifest.ref

    def predict(self, windows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = self.runner.run(normalise_windows(windows, self.scale))
        return denormalise_forecasts(windows[:, -1], out, self.scale)


class SentimentClassifier:
    """``p_negative`` for a batch of texts, tokenised with the model's own vocabulary.

    The graph's output goes through the manifest's calibration (numpy) when it has one.
    """

    def __init__(self, manifest: Manifest, runner: Runner, tokenizer: Tokenizer) -> None:
        self.manifest = manifest
        self.runner = runner
        self.tokenizer = tokenizer
        self.threshold = float(manifest.thresholds.get("escalation", 0.5))
        self.ref = manifest.ref

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        out = self.runner.run(self.tokenizer.encode(texts))
        p = np.clip(np.asarray(out, dtype=np.float64).reshape(-1), 0.0, 1.0)
        return apply_calibration(p, self.manifest.calibration) if self.manifest.calibration else p


def load_forecaster(model_dir: Path, threads: int = 1, wide_threads: int = 0) -> Forecaster:
    manifest, runner = open_verified(model_dir, "forecast", threads, wide_threads)
    forecaster = Forecaster(manifest, runner)
    probe = np.linspace(100.0, 101.0, forecaster.window)[None, :].repeat(2, axis=0)
    _probe(forecaster.predict(probe), 2, model_dir)
    return forecaster


def load_sentiment(model_dir: Path, threads: int = 1, wide_threads: int = 0) -> SentimentClassifier:
    manifest, runner = open_verified(model_dir, "sentiment", threads, wide_threads)
    pre = manifest.preprocessing
    if pre.get("id") not in TOKENIZER_IDS:
        raise ModelError(f"unsupported tokenizer {pre.get('id')!r}", model_dir=model_dir)
    vocab = (model_dir / str(pre["vocab_file"])).resolve()
    if model_dir.resolve() not in vocab.parents or not vocab.is_file():
        raise ModelError("vocabulary file missing or outside the model directory", model_dir=model_dir)
    try:
        tokenizer = load_tokenizer(vocab, int(pre["max_len"]), str(pre["pattern"]), pre.get("ngrams"))
        apply_calibration(np.array([0.5]), manifest.calibration)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"unusable preprocessing or calibration: {exc}", model_dir=model_dir) from exc
    classifier = SentimentClassifier(manifest, runner, tokenizer)
    _probe(classifier.predict(["probe text", "another"]), 2, model_dir)
    return classifier


def _probe(out: npt.NDArray[np.float64], n: int, model_dir: Path) -> None:
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise ModelError(f"probe batch gave shape {out.shape} or non-finite values", model_dir=model_dir)


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start
