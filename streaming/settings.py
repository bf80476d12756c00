"""One frozen settings object, built once from ``SENTINEL_*`` variables and CLI flags.

No other module reads ``os.environ``: everything is passed down from here.
"""

from __future__ import annotations

import difflib
import os
import socket
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


REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout (an editable install)


def _default_models_dir() -> Path:
    return REPO_ROOT / "models"


def _default_data_root() -> Path:
    """The shared offline data sits beside the repository checkout."""
    return REPO_ROOT.parent / "shared" / "data"


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
    # A batch also closes at this many bytes of input values: bundles of 100 ticks made
    # 100,000-tick batches at batch_max 1000 (docs/benchmarks.md, bundled peak RSS).
    batch_max_bytes: int = 1_048_576
    # The longest a batch lingers for more events. 5 ms, not 20: under load the linger was most
    # of a tick's wait (p50 at 2,000 ticks/s 44-56 -> 16-23 ms, docs/benchmarks.md).
    batch_within_s: float = 0.005
    # No 1-ms quiet wait before a batch closes while events arrive further apart than that
    # (streaming/worker/take.py); it only delayed every tick at low rates.
    batch_quiet_adaptive: bool = True
    # 0: each batch is processed inside the agent (the default CI crash-tests). >= 1: the
    # experimental two-stage pipe (docs/benchmarks.md, docs/reliability.md), opt-in.
    pipeline_depth: int = 0
    # Batches whose outputs are sent and not yet acknowledged while the agent takes the next
    # ones (streaming/worker/in_flight.py); 0 awaits each batch's acknowledgements in turn.
    acks_in_flight: int = 8
    # Price batches of up to this many ticks run on the event loop instead of the executor:
    # single-tick batches, even backed up; bundled batches (thousands of ticks) still go off it.
    inline_ticks: int = 512
    # Symbol state goes to the changelog this often (or after this many ticks), and input
    # offsets are committed only up to the last acknowledged checkpoint (docs/reliability.md).
    # 2 s: half the changelog records of 1 s for a restart to read back (docs/reliability.md, soak).
    checkpoint_interval_s: float = 2.0
    checkpoint_max_ticks: int = 50_000
    # Checkpoint records appended to producer record batches (streaming/kafka/batches.py)
    # instead of one producer send each.
    checkpoint_batches: bool = False
    # Partitions checkpointed in turn, one every interval / partitions, instead of all at once
    # (streaming/worker/checkpoint.py).
    checkpoint_stagger: bool = True
    publish_forecasts: bool = True  # off: only alerts leave the worker (fewer records per tick)
    # Outputs share produce requests for this long. 0: a record goes out with the next request;
    # records queued while one is in flight still share the one after it, so bundles keep
    # their throughput (p50 at 500 ticks/s 9-13 ms against 11-16 with 1 ms, docs/benchmarks.md).
    producer_linger_s: float = 0.0
    # Fetched records reach the streams without Faust's four tasks per record while the flow
    # is active (streaming/worker/delivery.py); off: Faust's own hand-over.
    direct_delivery: bool = True
    # Faust's Monitor sensor (per-record statistics for Faust's web views, which are off).
    faust_monitor: bool = False
    producer_max_batch_bytes: int = 16_384
    anomaly_threshold: float = 0.6  # on the detector's [0, 1) score (docs/anomalies.md)
    detector_warmup: int = 50
    max_message_bytes: int = 1_048_576
    inference_threads: int = 1
    # Threads for batches of >= 128 rows (bundles); 0 or <= inference_threads: one session only.
    inference_threads_large: int = 2
    model_reload_interval_s: float = 10.0
    session_timeout_s: float = 10.0
    # Static group membership (KIP-345): a worker restarted under the same id gets its
    # partitions back at once instead of after the dead member's session expires. Unique per
    # worker and stable across its restarts; "{hostname}" is replaced (compose, StatefulSet).
    group_instance_id: str = ""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = field(default_factory=Secret)
    ssl_cafile: str = ""  # empty: the system trust store (managed Kafka with public CAs)
    ssl_certfile: str = ""  # client certificate (mTLS), PEM
    ssl_keyfile: str = ""  # its private key, PEM
    ssl_check_hostname: bool = True
    # Topics the worker creates: dev defaults; production wants 3 and 2 (docs/operations.md).
    replication_factor: int = 1
    min_insync_replicas: int = 1
    # New symbols beyond this many are dead-lettered (too_many_symbols): bounded state and series.
    max_symbols: int = 10_000
    allowed_headers: str = "traceparent,tracestate,content-type"
    # exactly_once loses results under kill -9 (docs/reliability.md): refused unless this is set.
    experimental_exactly_once: bool = False
    log_level: str = "INFO"
    # Garbage collector (streaming/worker/gc_pauses.py): freeze the start-up heap so full
    # collections stop rescanning it; generation-0 threshold (0: CPython's 700).
    gc_freeze: bool = False
    gc_threshold0: int = 0
    event_loop: str = "asyncio"  # or "uvloop" (the [fast] extra; docs/benchmarks.md has both measured)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def static_member_id(self) -> str | None:
        """The consumer's ``group.instance.id``; ``None`` keeps dynamic membership."""
        if not self.group_instance_id:
            return None
        return self.group_instance_id.replace("{hostname}", socket.gethostname())

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
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "Secret":
            return raw if isinstance(raw, Secret) else Secret(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from exc
    if kind == "Guarantee" and raw not in ("at_least_once", "exactly_once"):
        raise ConfigError(f"{PREFIX}PROCESSING_GUARANTEE must be at_least_once or exactly_once")
    return raw


# SENTINEL_* variables that are not settings: docker-compose interpolation.
NOT_SETTINGS = frozenset({"services", "replay_speed", "image_tag", "feedback_rate", "alerts_min_severity"})


def set_in_environment(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``SENTINEL_<NAME>`` is set: an explicit setting beats one discovered at run time
    (the running demo's broker)."""
    env = os.environ if environ is None else environ
    return f"{PREFIX}{name.upper()}" in env


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``SENTINEL_*`` variables and CLI overrides; a misspelt variable is an error."""
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    from_env = {k[len(PREFIX):].lower(): v for k, v in env.items() if k.startswith(PREFIX)}
    unknown = sorted(set(from_env) - known - NOT_SETTINGS)
    if unknown:
        close = [difflib.get_close_matches(u, known, n=1) for u in unknown]
        hints = [f"{PREFIX}{u.upper()}" + (f" (did you mean {PREFIX}{c[0].upper()}?)" if c else "")
                 for u, c in zip(unknown, close, strict=True)]
        raise ConfigError(f"unknown variable(s): {', '.join(hints)}")
    values = {k: _coerce(k, v) for k, v in from_env.items() if k in known}
    settings = Settings(**values).with_overrides(**overrides)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    if not 0 < settings.metrics_port < 65536:
        raise ConfigError(f"metrics port {settings.metrics_port} is out of range")
    for name in ("partitions", "replication_factor", "min_insync_replicas", "max_symbols", "batch_max",
                 "batch_max_bytes"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{PREFIX}{name.upper()} must be >= 1")
    if settings.min_insync_replicas > settings.replication_factor:
        raise ConfigError(f"{PREFIX}MIN_INSYNC_REPLICAS ({settings.min_insync_replicas}) exceeds "
                          f"{PREFIX}REPLICATION_FACTOR ({settings.replication_factor})")
    if settings.processing_guarantee == "exactly_once" and not settings.experimental_exactly_once:
        raise ConfigError("exactly_once is refused: faust-streaming lost results under kill -9 in our "
                          "crash tests (docs/reliability.md); the default at_least_once with deterministic "
                          f"alert ids keeps every result ({PREFIX}EXPERIMENTAL_EXACTLY_ONCE=1 to probe it)")
    if settings.event_loop not in ("asyncio", "uvloop"):
        raise ConfigError(f"{PREFIX}EVENT_LOOP must be asyncio or uvloop")
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise ConfigError(f"{PREFIX}SSL_CERTFILE and {PREFIX}SSL_KEYFILE go together (mTLS)")


def header_allowlist(settings: Settings) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in settings.allowed_headers.split(",") if h.strip())
