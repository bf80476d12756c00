"""Served models and hot reload without restart.

The registry serves, per model name, the version pinned in ``<models_dir>/<name>/CURRENT``
or else the newest version directory. A periodic ``refresh`` loads a changed version,
verifies manifest, hash and shapes, runs a probe batch, and only then swaps it in with
one attribute assignment; agents read the attribute once per batch, so every message in
flight is scored by exactly one version. A refused model keeps the old one serving.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from export.errors import ModelError
from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL, Manifest
from streaming.metrics import Metrics
from streaming.serving.inference import (
    Forecaster,
    SentimentClassifier,
    latest_version_dir,
    load_forecaster,
    load_sentiment,
    sorted_versions,
)

logger = logging.getLogger(__name__)
PIN_FILE = "CURRENT"
LOADERS: dict[str, Callable[[Path, int, int], Any]] = {FORECAST_MODEL: load_forecaster,
                                                  SENTIMENT_MODEL: load_sentiment}


def wanted_dir(models_dir: Path, name: str) -> Path:
    """The pinned version if ``CURRENT`` names one, else the newest."""
    pin = models_dir / name / PIN_FILE
    if pin.is_file():
        version = pin.read_text(encoding="utf-8").strip()
        target = (models_dir / name / version).resolve()
        if target.parent != (models_dir / name).resolve() or not target.is_dir():
            raise ModelError(f"{pin} names {version!r}, which is not a version directory")
        return target
    return latest_version_dir(models_dir, name)


def pin(models_dir: Path, name: str, version: str | None) -> None:
    """Pin a version (atomically), or unpin with ``None`` to follow the newest."""
    path = models_dir / name / PIN_FILE
    if version is None:
        path.unlink(missing_ok=True)
        return
    if not (models_dir / name / version / "manifest.json").is_file():
        raise ModelError(f"no version {version} of {name} under {models_dir}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, path)


def rollback(models_dir: Path, name: str) -> str:
    """Pin the version before the one currently wanted; returns it."""
    current = wanted_dir(models_dir, name).name
    names = [p.name for p in sorted_versions(models_dir, name)]
    index = names.index(current) if current in names else len(names)
    if index == 0:
        raise ModelError(f"{name} {current} is the oldest version: nothing to roll back to")
    pin(models_dir, name, names[index - 1])
    return names[index - 1]


class ModelRegistry:
    """What the agents serve; ``forecaster``/``classifier`` are swapped whole."""

    forecaster: Forecaster
    classifier: SentimentClassifier

    def __init__(self, models_dir: Path, metrics: Metrics, threads: int = 1, wide_threads: int = 0) -> None:
        self.models_dir = models_dir
        self.metrics = metrics
        self.threads = threads
        self.wide_threads = wide_threads
        self.serving: dict[str, Manifest] = {}
        self.refused: dict[str, tuple[Path, float]] = {}

    def load_initial(self) -> None:
        """Load both models or raise: the worker does not start without them."""
        for name in LOADERS:
            try:
                self._install(name, self._load(name, wanted_dir(self.models_dir, name)))
            except ModelError:
                self.metrics.model_load_failures.labels(name).inc()
                raise

    def refresh(self) -> list[str]:
        """Swap in any changed version; returns ``name@version`` of each swap."""
        swapped = []
        for name in LOADERS:
            try:
                target = wanted_dir(self.models_dir, name)
            except ModelError as exc:
                logger.warning("model reload skipped name=%s: %s", name, exc)
                continue
            if target.name == self.serving[name].version or self._already_refused(name, target):
                continue
            try:
                model = self._load(name, target)
            except ModelError as exc:
                self._refuse(name, target, exc)
                continue
            self._install(name, model)
            swapped.append(model.ref)
        return swapped

    def _load(self, name: str, path: Path) -> Any:
        return LOADERS[name](path, self.threads, self.wide_threads)

    def _install(self, name: str, model: Any) -> None:
        old = self.serving.get(name)
        if name == FORECAST_MODEL:
            self.forecaster = model
        else:
            self.classifier = model
        self.serving[name] = model.manifest
        if old is not None:
            self.metrics.model_info.remove(old.name, old.version, old.kind)
            self.metrics.model_reloads.labels(name, "swapped").inc()
        m = model.manifest
        self.metrics.model_info.labels(m.name, m.version, m.kind).set(1)
        logger.info("model serving name=%s version=%s", m.name, m.version)

    def _already_refused(self, name: str, target: Path) -> bool:
        seen = self.refused.get(name)
        return seen is not None and seen == (target, _mtime(target))

    def _refuse(self, name: str, target: Path, exc: ModelError) -> None:
        self.refused[name] = (target, _mtime(target))
        self.metrics.model_load_failures.labels(name).inc()
        self.metrics.model_reloads.labels(name, "refused").inc()
        logger.error("model refused name=%s version=%s, still serving %s: %s", name, target.name,
                     self.serving[name].version, exc)


def _mtime(path: Path) -> float:
    return max((p.stat().st_mtime for p in path.iterdir()), default=0.0) if path.is_dir() else 0.0
