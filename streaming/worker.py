"""``sentinel worker``: load verified models, expose /metrics, run the Faust worker."""

from __future__ import annotations

import asyncio
import logging

import faust
from prometheus_client import start_http_server

from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from streaming.app import TABLE_NAME, Models, create_app, new_metrics
from streaming.inference import latest_version_dir, load_forecaster, load_sentiment
from streaming.kafka_admin import changelog_topic, ensure_topics
from streaming.metrics import Metrics
from streaming.settings import Settings

logger = logging.getLogger(__name__)


def load_models(settings: Settings, metrics: Metrics) -> Models:
    threads = settings.inference_threads
    try:
        forecaster = load_forecaster(latest_version_dir(settings.models_dir, FORECAST_MODEL), threads)
    except Exception:
        metrics.model_load_failures.labels(FORECAST_MODEL).inc()
        raise
    try:
        classifier = load_sentiment(latest_version_dir(settings.models_dir, SENTIMENT_MODEL), threads)
    except Exception:
        metrics.model_load_failures.labels(SENTIMENT_MODEL).inc()
        raise
    for m in (forecaster.manifest, classifier.manifest):
        metrics.model_info.labels(m.name, m.version, m.kind).set(1)
        logger.info("model loaded name=%s version=%s", m.name, m.version)
    return Models(forecaster, classifier)


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
