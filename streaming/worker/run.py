"""``sentinel worker``: load verified models, expose /metrics, run the Faust worker."""

from __future__ import annotations

import asyncio
import logging

import faust
from prometheus_client import start_http_server

from streaming.kafka.admin import changelog_topic, ensure_topics
from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry
from streaming.settings import Settings
from streaming.worker.app import TABLE_NAME, create_app, new_metrics

logger = logging.getLogger(__name__)


def load_models(settings: Settings, metrics: Metrics) -> ModelRegistry:
    registry = ModelRegistry(settings.models_dir, metrics, settings.inference_threads,
                             settings.inference_threads_large)
    registry.load_initial()
    return registry


def run_worker(settings: Settings) -> int:
    metrics = new_metrics()
    models = load_models(settings, metrics)
    asyncio.run(ensure_topics(settings, compacted=(changelog_topic(settings, TABLE_NAME),)))
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry)
    logger.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, models, metrics)
    worker = faust.Worker(app, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()
    return 0
