"""From a trained Keras model to a served release: run directories and ONNX export.

A training run is saved as a *run directory* (``model.keras``, ``run.json`` with
everything the manifest needs except what conversion yields, a held-out parity batch,
the vocabulary). ``sentinel export RUN_DIR`` and ``--export-to`` both go through
:func:`export_release`, so there is one way a model reaches ``models/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.manifest import Manifest, TensorSpec, content_version, utc_now_iso, write_model_dir
from training.errors import DataError

logger = logging.getLogger(__name__)

KERAS_FILE = "model.keras"
RUN_FILE = "run.json"
PARITY_FILE = "parity_batch.npy"


@dataclass(frozen=True)
class ReleaseSpec:
    """The manifest minus version, hash, parity and creation time."""

    name: str
    kind: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: dict[str, Any]
    thresholds: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseSpec:
        data = dict(data)
        data["inputs"] = [TensorSpec(**t) for t in data["inputs"]]
        data["outputs"] = [TensorSpec(**t) for t in data["outputs"]]
        return cls(**data)


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays -> plain JSON values (the manifest is read by non-Python tools too)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def save_run(run_dir: Path, model: Any, spec: ReleaseSpec, parity_batch: npt.NDArray[Any],
             extra_files: dict[str, bytes] | None = None) -> Path:
    """Keep the Keras model and its metadata so it can be exported (or inspected) later."""
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / KERAS_FILE)
    (run_dir / RUN_FILE).write_text(json.dumps(_jsonable(asdict(spec)), indent=2) + "\n", encoding="utf-8")
    np.save(run_dir / PARITY_FILE, parity_batch)
    for name, data in (extra_files or {}).items():
        (run_dir / name).write_bytes(data)
    return run_dir


def export_release(model: Any, spec: ReleaseSpec, parity_batch: npt.NDArray[Any], models_root: Path,
                   extra_files: dict[str, bytes] | None = None) -> tuple[Path, Manifest]:
    """Convert with the parity gate and write ``models_root/<name>/<version>/``."""
    from export.onnx_convert import convert_checked

    data, parity = convert_checked(model, spec.inputs[0], spec.outputs[0], parity_batch)
    manifest = Manifest(name=spec.name, version=content_version(data), kind=spec.kind,  # type: ignore[arg-type]
                        inputs=spec.inputs, outputs=spec.outputs, preprocessing=spec.preprocessing,
                        onnx_sha256=hashlib.sha256(data).hexdigest(), thresholds=spec.thresholds,
                        training=_jsonable(spec.training), metrics=_jsonable(spec.metrics),
                        parity=_jsonable(parity), calibration=_jsonable(spec.calibration),
                        created=utc_now_iso())
    target = write_model_dir(models_root, manifest, data, extra_files)
    logger.info("exported model=%s dir=%s bytes=%d", manifest.ref, target, len(data))
    return target, manifest


def export_run_dir(run_dir: Path, models_root: Path) -> tuple[Path, Manifest]:
    """``sentinel export``: a saved run directory -> a verified release."""
    import keras

    import training.wide  # noqa: F401  (registers the wide-and-deep layers for load_model)

    for needed in (KERAS_FILE, RUN_FILE, PARITY_FILE):
        if not (run_dir / needed).is_file():
            raise DataError(f"{run_dir} is not a training run directory (no {needed})")
    spec = ReleaseSpec.from_dict(json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8")))
    model = keras.models.load_model(run_dir / KERAS_FILE, compile=False)
    vocab_file = spec.preprocessing.get("vocab_file")
    extra = {str(vocab_file): (run_dir / str(vocab_file)).read_bytes()} if vocab_file else None
    return export_release(model, spec, np.load(run_dir / PARITY_FILE), models_root, extra)
