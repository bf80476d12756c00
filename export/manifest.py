"""The model manifest: what a served model is, how to feed it, and proof it is intact.

The worker refuses any model whose manifest is incomplete, whose ONNX hash differs,
or whose graph inputs/outputs disagree with the manifest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from export.errors import ModelError

ModelKind = Literal["forecast", "sentiment"]
MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
SCHEMA_VERSION = 1
FORECAST_MODEL = "price-forecast"
SENTIMENT_MODEL = "feedback-sentiment"
_REQUIRED = ("name", "version", "kind", "inputs", "outputs", "preprocessing", "onnx_sha256")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: list[int | None]


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    kind: ModelKind
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: dict[str, Any]
    onnx_sha256: str
    thresholds: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    # Post-processing of the graph output in numpy (export.calibration); empty = none.
    calibration: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def ref(self) -> str:
        """``name@version``, the value of the ``model`` field in every output record."""
        return f"{self.name}@{self.version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_manifest(data: dict[str, Any], model_dir: Path | None = None) -> Manifest:
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ModelError(f"manifest is missing {', '.join(missing)}", model_dir=model_dir)
    if data["kind"] not in ("forecast", "sentiment"):
        raise ModelError(f"unknown model kind {data['kind']!r}", model_dir=model_dir)
    try:
        fields = {k: v for k, v in data.items() if k in Manifest.__dataclass_fields__}
        fields["inputs"] = [TensorSpec(**t) for t in data["inputs"]]
        fields["outputs"] = [TensorSpec(**t) for t in data["outputs"]]
        return Manifest(**fields)
    except TypeError as exc:
        raise ModelError(f"malformed manifest: {exc}", model_dir=model_dir) from exc


def read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        raise ModelError("no manifest.json", model_dir=model_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable manifest: {exc}", model_dir=model_dir) from exc
    if not isinstance(data, dict):
        raise ModelError("manifest is not a JSON object", model_dir=model_dir)
    return parse_manifest(data, model_dir)


def verify_hash(model_dir: Path, manifest: Manifest) -> Path:
    """Return the ONNX path if its sha256 is the manifest's; refuse otherwise."""
    onnx_path = model_dir / ONNX_FILE
    if not onnx_path.is_file():
        raise ModelError("no model.onnx", model_dir=model_dir)
    actual = sha256_file(onnx_path)
    if actual != manifest.onnx_sha256:
        raise ModelError(f"sha256 mismatch: manifest {manifest.onnx_sha256[:12]}…, "
                         f"file {actual[:12]}…", model_dir=model_dir)
    return onnx_path


def shapes_match(declared: list[int | None], actual: list[Any]) -> bool:
    """Dynamic dims (None, or a symbolic name in the graph) match each other only."""
    if len(declared) != len(actual):
        return False
    for d, a in zip(declared, actual, strict=True):
        a_fixed = a if isinstance(a, int) else None
        if d != a_fixed:
            return False
    return True


def content_version(onnx_bytes: bytes, when: datetime | None = None) -> str:
    """Version derived from content: date + hash prefix, so equal bytes give equal versions."""
    day = (when or datetime.now(UTC)).strftime("%Y%m%d")
    return f"{day}-{hashlib.sha256(onnx_bytes).hexdigest()[:10]}"


def write_model_dir(root: Path, manifest: Manifest, onnx_bytes: bytes,
                    extra_files: dict[str, bytes] | None = None) -> Path:
    """Write ``root/<name>/<version>/``; never overwrite a different model."""
    target = root / manifest.name / manifest.version
    if target.exists():
        existing = target / ONNX_FILE
        if existing.is_file() and sha256_file(existing) == manifest.onnx_sha256:
            return target
        raise ModelError("a different model already has this version", model_dir=target)
    target.mkdir(parents=True)
    (target / ONNX_FILE).write_bytes(onnx_bytes)
    for name, data in (extra_files or {}).items():
        (target / name).write_bytes(data)
    (target / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")
    return target
