"""The Faust application: topics, the symbol-state table, agents and timers.

Built by a function (not at import time) so the settings object is passed in and
tests can start several isolated workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import faust
from faust.streams import Stream
from faust.types import TP, EventT, StreamT
from prometheus_client import CollectorRegistry

from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from streaming import topics
from streaming.core.detector import DetectorConfig, ResidualDetector
from streaming.core.schemas import REASONS
from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry
from streaming.settings import Settings
from streaming.worker.agents import AckedChangelog, DeadLetters, FaustChangelog, FeedbackHandler, PriceHandler
from streaming.worker.batch_pipe import BatchPipe
from streaming.worker.consumer_control import committed_offset, seek
from streaming.worker.offset_guard import OffsetGuard, Verdict

logger = logging.getLogger(__name__)
TABLE_NAME = "symbol-state"


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials from the same settings the aiokafka clients use (kafka_admin)."""
    context = None
    if settings.ssl_cafile or settings.security_protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        context = create_ssl_context(cafile=settings.ssl_cafile or None)
    if settings.sasl_mechanism:
        return faust.SASLCredentials(username=settings.sasl_username,
                                     password=settings.sasl_password.value,
                                     mechanism=settings.sasl_mechanism, ssl_context=context)
    return faust.SSLCredentials(context) if context is not None else None


def faust_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_credentials": broker_credentials(settings),
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",  # state is rebuilt from the changelog topic on start
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        "processing_guarantee": settings.processing_guarantee,
        "web_enabled": False,
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_every": 1000,
        "broker_commit_interval": 1.0,
        "producer_linger": settings.producer_linger_s,
        "producer_max_batch_size": settings.producer_max_batch_bytes,
        "stream_buffer_maxsize": 8192,
        "table_standby_replicas": 0,
        # A crashed worker's partitions move after this long (Faust's default is 60 s).
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_s / 3),
    }


def create_app(settings: Settings, models: ModelRegistry, metrics: Metrics) -> faust.App:
    app = faust.App(settings.app_id, **faust_config(settings))

    def raw_topic(name: str, partitions: int | None = None) -> faust.TopicT:
        # Raw bytes in and out: validation and JSON are ours, so bad input reaches the dead letter.
        return app.topic(settings.topic(name), partitions=partitions, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    ticks = raw_topic(topics.TICKS, settings.partitions)
    feedback = raw_topic(topics.FEEDBACK, settings.partitions)
    table = app.Table(TABLE_NAME, default=None, partitions=settings.partitions,
                      schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"))
    out_topics = {name: raw_topic(name) for name in topics.OUTPUT_TOPICS}

    exactly_once = settings.processing_guarantee == "exactly_once"
    pipelined = settings.pipeline_depth > 0 and not exactly_once

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        """Enqueue one record; returns the future of the broker's acknowledgement.

        Straight to the producer, which is cheaper per record than Faust's ``Topic.send``
        (docs/benchmarks.md); exactly-once needs ``Topic.send``, whose records join the
        consumed offsets' transaction.
        """
        if exactly_once:
            return await out_topics[topic.removeprefix(settings.topic_prefix)].send(key=key, value=value)
        return await app.producer.send(topic, key, value, None, None, None)

    async def send_to_partition(topic: str, key: bytes, value: bytes, partition: int) -> Any:
        return await app.producer.send(topic, key, value, partition, None, None)

    metrics.prime((ticks.get_topic_name(), feedback.get_topic_name()), REASONS,
                  (FORECAST_MODEL, SENTIMENT_MODEL))
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
    dead = DeadLetters(send, settings.topic(topics.DEAD_LETTER), metrics)
    detector = ResidualDetector(DetectorConfig(threshold=settings.anomaly_threshold,
                                               warmup=settings.detector_warmup))
    # Faust's own table writes are buffered and its pre-commit flush can return with a
    # record still in transit, so a kill -9 could restore a state older than the committed
    # offsets (ticks silently missing from the window). Ours are acknowledged before the
    # events are acked; exactly-once keeps Faust's, which join the transaction.
    state_writer = FaustChangelog(table) if exactly_once else AckedChangelog(table, send_to_partition)
    prices = PriceHandler(table, send, settings.topic, models, detector, metrics, dead,
                          settings.max_message_bytes, executor, state_writer)
    fb = FeedbackHandler(send, settings.topic, models, metrics, dead,
                         settings.max_message_bytes, executor)

    async def consume(stream: StreamT, handler: PriceHandler | FeedbackHandler, max_batch: int) -> None:
        batches = cast(Stream, stream).take_events(max_batch, within=settings.batch_within_s)
        guard = OffsetGuard()
        if not pipelined:  # exactly-once also lands here: sends must join the event's transaction
            async for events in batches:
                if admitted := await admit(guard, events):
                    await handler.handle(admitted)
            return
        pipe: BatchPipe[Any] = BatchPipe(stream, handler.prepare, handler.finish,  # type: ignore[arg-type]
                                         depth=settings.pipeline_depth)
        try:
            async for events in batches:
                if admitted := await admit(guard, events):
                    await pipe.put(admitted)
        finally:
            await pipe.stop()

    async def admit(guard: OffsetGuard, events: Sequence[EventT]) -> list[EventT]:
        """The events to process: none skipped silently (streaming/worker/offset_guard.py)."""
        keep: list[EventT] = []
        seeks: dict[TP, int] = {}
        rewinds, holes = guard.rewinds, guard.holes_accepted
        for event in events:
            message = event.message
            tp = message.tp
            if guard.needs_start(tp, message.generation_id):
                guard.start(tp, message.generation_id, await committed_offset(app.consumer, tp))
            verdict, seek_to = guard.check(tp, message.offset)
            if verdict is Verdict.PROCESS:
                keep.append(event)
            elif verdict is Verdict.HOLD:
                message.incref()  # take_events' ack now leaves it unacknowledged: never committed
            if seek_to is not None:
                if tp not in seeks and guard.rewinds > rewinds:
                    logger.warning("%s[%d]: offset %d never reached the agent (got %d); rewinding",
                                   tp.topic, tp.partition, seek_to, message.offset)
                    metrics.offset_rewinds.labels(tp.topic).inc()
                seeks[tp] = seek_to
            if guard.holes_accepted > holes:
                logger.error("%s[%d]: offsets below %d never arrived after %.0f s of rewinds; "
                             "taking them for a hole in the log and moving on", tp.topic, tp.partition,
                             seek_to, guard.hole_timeout_s)
            rewinds, holes = guard.rewinds, guard.holes_accepted
        for tp, offset in seeks.items():
            await seek(app.consumer, tp, offset)
        return keep

    @app.agent(ticks)
    async def price_agent(stream: StreamT) -> None:
        await consume(stream, prices, settings.batch_max)

    @app.agent(feedback)
    async def feedback_agent(stream: StreamT) -> None:
        await consume(stream, fb, min(settings.batch_max, 256))

    @app.timer(interval=5.0)
    async def report_lag() -> None:
        await _report_lag(app, metrics, {ticks.get_topic_name(), feedback.get_topic_name()})

    @app.timer(interval=settings.model_reload_interval_s)
    async def reload_models() -> None:
        # Loading and probing run off the event loop; the swap is one attribute assignment.
        swapped = await asyncio.get_running_loop().run_in_executor(None, models.refresh)
        for ref in swapped:
            logger.info("hot reload: now serving %s", ref)

    return app


async def _report_lag(app: faust.App, metrics: Metrics, sources: set[str]) -> None:
    """Lag = partition end minus the consumer's position, for the input partitions we own."""
    consumer = app.consumer
    owned = [tp for tp in consumer.assignment() if tp.topic in sources]
    _forget_revoked(metrics, {(tp.topic, str(tp.partition)) for tp in owned})
    if not owned:
        return
    highwaters = await consumer.highwaters(*owned)
    for tp in owned:
        position = await _position(consumer, tp)
        if position is not None:
            lag = max(0, highwaters.get(tp, position) - position)
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)


def _forget_revoked(metrics: Metrics, owned: set[tuple[str, str]]) -> None:
    """Drop lag series of partitions a rebalance took away, so no stale value lingers."""
    for metric in metrics.consumer_lag.collect():
        for sample in metric.samples:
            key = (sample.labels["topic"], sample.labels["partition"])
            if key not in owned:
                metrics.consumer_lag.remove(*key)


async def _position(consumer: Any, tp: TP) -> int | None:
    try:
        return await asyncio.wait_for(consumer.position(tp), timeout=1.0)
    except Exception:  # a partition being revoked mid-call; the next tick retries
        return None


def new_metrics() -> Metrics:
    return Metrics(CollectorRegistry())
