"""``sentinel worker``: load verified models, expose /metrics, run the Faust worker."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading

import faust
from prometheus_client import start_http_server

from streaming.errors import ConfigError
from streaming.kafka.admin import changelog_topic, ensure_topics
from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry
from streaming.settings import Settings
from streaming.worker import gc_pauses
from streaming.worker.app import TABLE_NAME, create_app, new_metrics

logger = logging.getLogger(__name__)
SHUTDOWN_GRACE_S = 8.0  # SIGTERM/SIGINT end the process within this, whatever state it is in
EXIT_FORCED_STOP = 4


def load_models(settings: Settings, metrics: Metrics) -> ModelRegistry:
    registry = ModelRegistry(settings.models_dir, metrics, settings.inference_threads,
                             settings.inference_threads_large)
    registry.load_initial()
    return registry


class Worker(faust.Worker):
    """Faust's worker with a deadline on shutdown.

    Faust's graceful stop commits what is acknowledged and leaves the group; with the
    broker down, an agent stuck or a rewind in progress it can wait far longer than a
    supervisor's grace period. After ``SHUTDOWN_GRACE_S`` the process exits anyway: only
    acknowledged work was ever committed, so the next start re-reads the rest.
    """

    def _on_sigterm(self) -> None:
        _start_deadline()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        _start_deadline()
        super()._on_sigint()


def _start_deadline(grace: float = SHUTDOWN_GRACE_S) -> None:
    def expire() -> None:
        print(f"sentinel worker: shutdown took over {grace:.0f} s; exiting without waiting "
              "(only acknowledged work was committed)", file=sys.stderr, flush=True)
        os._exit(EXIT_FORCED_STOP)

    timer = threading.Timer(grace, expire)
    timer.daemon = True
    timer.start()


def use_event_loop(name: str) -> None:
    """uvloop, when asked for, before Faust or anything else makes a loop."""
    if name != "uvloop":
        return
    try:
        import uvloop
    except ImportError:
        raise ConfigError("SENTINEL_EVENT_LOOP=uvloop needs uvloop: "
                          "pip install 'stream-sentinel[fast]'") from None
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    logger.info("event loop: uvloop %s", uvloop.__version__)


def run_worker(settings: Settings) -> int:
    use_event_loop(settings.event_loop)
    metrics = new_metrics()
    models = load_models(settings, metrics)
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve /metrics on {settings.metrics_host}:{settings.metrics_port}: "
                          f"{exc.strerror or exc} (another worker? set SENTINEL_METRICS_PORT)") from None
    asyncio.run(ensure_topics(settings, compacted=(changelog_topic(settings, TABLE_NAME),)))
    logger.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, models, metrics)
    worker = Worker(app, loglevel=settings.log_level.lower())
    gc_pauses.watch(lambda gen, seconds: metrics.gc_pause_seconds.labels(str(gen)).observe(seconds))
    gc_pauses.tune(freeze=settings.gc_freeze, threshold0=settings.gc_threshold0)
    worker.execute_from_commandline()
    return 0
