"""One frozen settings object, built once from ``SENTINEL_*`` variables and CLI flags.

No other module reads ``os.environ``: everything is passed down from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from streaming.errors import ConfigError

PREFIX = "SENTINEL_"
Guarantee = Literal["at_least_once", "exactly_once"]


@dataclass(frozen=True)
class Secret:
    """A string that never shows itself in repr, logs or tracebacks."""

    value: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return "Secret('***')" if self.value else "Secret('')"

    __str__ = __repr__


def _default_models_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "models"


def _default_data_root() -> Path:
    """The shared offline data sits beside the repository checkout."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    app_id: str = "stream-sentinel"
    models_dir: Path = field(default_factory=_default_models_dir)
    data_dir: Path = Path(".sentinel")
    data_root: Path = field(default_factory=_default_data_root)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    partitions: int = 4
    processing_guarantee: Guarantee = "at_least_once"
    batch_max: int = 1000
    batch_within_s: float = 0.02  # take_events window: bigger batches, fewer produce requests
    # 0: each batch is processed inside the agent (the default CI crash-tests). >= 1: the
    # experimental two-stage pipe (docs/benchmarks.md, docs/reliability.md), opt-in.
    pipeline_depth: int = 0
    producer_linger_s: float = 0.005  # outputs share produce requests (docs/benchmarks.md)
    producer_max_batch_bytes: int = 16_384
    anomaly_threshold: float = 0.6  # on the detector's [0, 1) score (docs/anomalies.md)
    detector_warmup: int = 50
    max_message_bytes: int = 1_048_576
    inference_threads: int = 1
    # Threads for batches of >= 128 rows (bundles); 0 or <= inference_threads: one session only.
    inference_threads_large: int = 2
    model_reload_interval_s: float = 10.0
    session_timeout_s: float = 10.0
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = field(default_factory=Secret)
    ssl_cafile: str = ""
    log_level: str = "INFO"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def with_overrides(self, **overrides: Any) -> Settings:
        """CLI flags win over the environment; ``None`` means the flag was not given."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **{k: _coerce(k, v) for k, v in given.items()})


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
        if kind == "Secret":
            return raw if isinstance(raw, Secret) else Secret(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from exc
    if kind == "Guarantee" and raw not in ("at_least_once", "exactly_once"):
        raise ConfigError(f"{PREFIX}PROCESSING_GUARANTEE must be at_least_once or exactly_once")
    return raw


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    from_env = {k[len(PREFIX):].lower(): v for k, v in env.items() if k.startswith(PREFIX)}
    values = {k: _coerce(k, v) for k, v in from_env.items() if k in known}
    settings = Settings(**values).with_overrides(**overrides)
    if not 0 < settings.metrics_port < 65536:
        raise ConfigError(f"metrics port {settings.metrics_port} is out of range")
    return settings
