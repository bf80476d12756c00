"""The Faust application: topics, the symbol-state table, agents and timers.

Built by a function (not at import time) so the settings object is passed in and
tests can start several isolated workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import faust
from faust.types import StreamT
from prometheus_client import CollectorRegistry

from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from streaming import topics
from streaming.core.detector import DetectorConfig, ResidualDetector
from streaming.core.schemas import REASONS
from streaming.errors import one_line
from streaming.kafka.admin import client_kwargs, ssl_context
from streaming.kafka.batches import records_sender
from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry
from streaming.settings import Settings, header_allowlist
from streaming.worker import gc_pauses
from streaming.worker.changelog import AckedChangelog, FaustChangelog
from streaming.worker.checkpoint import Checkpoints
from streaming.worker.commit_ledger import CommitLedger, install
from streaming.worker.dead_letters import DeadLetters
from streaming.worker.delivery import use_direct_delivery, without_monitor
from streaming.worker.feedback import FeedbackHandler
from streaming.worker.in_flight import InFlight
from streaming.worker.intake import BatchIntake, HoleProbe
from streaming.worker.lag import LagReporter
from streaming.worker.prices import PriceHandler
from streaming.worker.take import take_ready

logger = logging.getLogger(__name__)
TABLE_NAME = "symbol-state"
EXIT_AGENT_DIED = 3
GC_FREEZE_AFTER_S = 10.0  # SENTINEL_GC_FREEZE: the second freeze, once the worker has run this long


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials from the same settings (and TLS context) the aiokafka clients use."""
    context = ssl_context(settings)
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
        "consumer_group_instance_id": settings.static_member_id(),
    }


def create_app(settings: Settings, models: ModelRegistry, metrics: Metrics) -> faust.App:
    app = faust.App(settings.app_id, **faust_config(settings))
    if settings.direct_delivery:
        use_direct_delivery(app)

    def raw_topic(name: str, partitions: int | None = None) -> faust.TopicT:
        # Raw bytes in and out: validation and JSON are ours, so bad input reaches the dead letter.
        return app.topic(settings.topic(name), partitions=partitions, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    ticks = raw_topic(topics.TICKS, settings.partitions)
    feedback = raw_topic(topics.FEEDBACK, settings.partitions)
    # Values are SymbolState.to_bytes(); value_type=bytes is what makes the changelog
    # topic (and so recovery) use the raw codec too, not only the table's own schema.
    table = app.Table(TABLE_NAME, default=None, partitions=settings.partitions, key_type=str,
                      value_type=bytes,
                      schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="json",
                                          value_serializer="raw"))
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
    # Exactly-once keeps Faust's table writes and commits (they join the transaction), so
    # it checkpoints after every batch.
    # Faust's transport producer wraps aiokafka's; its batch API is not exposed otherwise.
    kafka_producer = lambda: app.producer._ensure_producer()  # type: ignore[attr-defined]  # noqa: E731
    batched = records_sender(kafka_producer) if settings.checkpoint_batches else None
    state_writer = (FaustChangelog(table) if exactly_once
                    else AckedChangelog(table, send_to_partition, batched))
    ledgers = {ticks.get_topic_name(): CommitLedger(), feedback.get_topic_name(): CommitLedger()}
    checkpoints = Checkpoints(table, state_writer, ledgers[ticks.get_topic_name()],
                              interval_s=0.0 if exactly_once else settings.checkpoint_interval_s,
                              max_ticks=settings.checkpoint_max_ticks, stagger=settings.checkpoint_stagger)
    metrics.state_bytes.set_function(lambda: checkpoints.state_bytes)
    headers = header_allowlist(settings)
    # Exactly-once completes each batch inside its transaction; otherwise acknowledgements
    # are awaited off the batch cycle, in order (in_flight.py).
    in_flight = 0 if exactly_once else settings.acks_in_flight
    prices_in_flight = InFlight(in_flight, on_error=partial(die, "prices", metrics))
    feedback_in_flight = InFlight(in_flight, on_error=partial(die, "feedback", metrics))
    prices = PriceHandler(table, send, settings.topic, models, detector, metrics, dead,
                          settings.max_message_bytes, executor, checkpoints,
                          max_symbols=settings.max_symbols, allowed_headers=headers,
                          publish_forecasts=settings.publish_forecasts, in_flight=prices_in_flight,
                          inline_ticks=settings.inline_ticks)
    fb = FeedbackHandler(send, settings.topic, models, metrics, dead,
                         settings.max_message_bytes, executor, allowed_headers=headers,
                         ledger=ledgers[feedback.get_topic_name()], in_flight=feedback_in_flight)

    isolation = "read_committed" if exactly_once else "read_uncommitted"  # as Faust's consumer
    take = partial(take_ready, max_bytes=settings.batch_max_bytes, adaptive=settings.batch_quiet_adaptive)
    intake_prices = BatchIntake(prices, None, metrics, settings.batch_max, settings.batch_within_s,
                                settings.pipeline_depth if pipelined else 0,
                                HoleProbe(client_kwargs(settings), isolation), take=take,
                                hold_by_reference=exactly_once)
    intake_feedback = BatchIntake(fb, None, metrics, min(settings.batch_max, 256), settings.batch_within_s,
                                  settings.pipeline_depth if pipelined else 0,
                                  HoleProbe(client_kwargs(settings), isolation), take=take,
                                  hold_by_reference=exactly_once)
    lag = LagReporter(None, metrics, {ticks.get_topic_name(), feedback.get_topic_name()})

    # Faust creates its consumer when the worker starts: the intakes get it then.
    def take_over_commits() -> None:
        if not exactly_once:  # there the transaction commits the offsets
            install(app.consumer, ledgers)
        if not settings.faust_monitor:
            without_monitor(app)

    @app.agent(ticks)
    async def price_agent(stream: StreamT) -> None:
        take_over_commits()
        intake_prices.consumer = app.consumer
        await supervised("prices", intake_prices.run(stream), metrics)

    @app.agent(feedback)
    async def feedback_agent(stream: StreamT) -> None:
        take_over_commits()
        intake_feedback.consumer = app.consumer
        await supervised("feedback", intake_feedback.run(stream), metrics)

    @app.timer(interval=5.0)
    async def report_lag() -> None:
        lag.consumer = app.consumer
        await lag.report()

    @app.timer(interval=max(0.05, settings.checkpoint_interval_s))
    async def checkpoint_idle() -> None:
        # Busy agents checkpoint from their batches; this covers the quiet ones.
        await prices.checkpoint_now()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        await hand_over(app, prices, fb, ledgers, set(args[0]))

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        await hand_over(app, prices, fb, ledgers, None)

    if settings.gc_freeze:
        frozen_once = [False]

        @app.timer(interval=GC_FREEZE_AFTER_S)
        async def freeze_runtime() -> None:
            # What Faust, aiokafka and the intakes built once running, and the states
            # recovered by then, stay alive for good: out of every later full collection.
            if not frozen_once[0]:
                frozen_once[0] = True
                gc_pauses.freeze_alive()

    @app.timer(interval=settings.model_reload_interval_s)
    async def reload_models() -> None:
        # Loading and probing run off the event loop; the swap is one attribute assignment.
        swapped = await asyncio.get_running_loop().run_in_executor(None, models.refresh)
        for ref in swapped:
            logger.info("hot reload: now serving %s", ref)

    return app


async def hand_over(app: faust.App, prices: PriceHandler, fb: FeedbackHandler,
                    ledgers: dict[str, CommitLedger], revoked: set[Any] | None) -> None:
    """Before partitions leave (rebalance, stop): complete sent batches, checkpoint, commit, forget.

    Faust has waited for every delivered event to be acknowledged by now; once the batches
    in flight are completed the live states match the finished offsets. Without this the
    next owner would replay up to a checkpoint interval of input (duplicates, never a loss).
    """
    # No timeout: a batch completed after its partitions were forgotten would mark them
    # finished again. A failed acknowledgement ends the process (die) instead.
    await prices.in_flight.drain()
    await fb.in_flight.drain()
    try:
        await prices.checkpoint_now()
        await app.consumer.commit(revoked)
    except Exception as exc:  # the commit is an optimisation: the ledger's offsets stay safe
        logger.warning("hand-over checkpoint/commit failed (%s): the next owner replays more", one_line(exc))
    if revoked:
        for ledger in ledgers.values():
            ledger.forget(revoked)
        dropped = prices.checkpoints.drop(tp.partition for tp in revoked if tp.topic == prices.source_topic)
        logger.info("partitions revoked: %d symbols handed over", dropped)


async def supervised(agent: str, body: Coroutine[Any, Any, None], metrics: Metrics) -> None:
    """Run an agent; if it ever stops with an error, end the process (exit code 3) with one line.

    Faust would restart the agent, which then consumed nothing more while every metric
    stayed green; a dead process is what supervisors (compose ``restart:``, systemd,
    Kubernetes) see and restart. Nothing past the acknowledged outputs was committed, so
    the restarted worker re-reads from there (at-least-once).
    """
    try:
        await body
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - every way out of an agent is fatal
        die(agent, metrics, exc)


def die(agent: str, metrics: Metrics, exc: BaseException) -> None:
    """One line on stderr, then exit 3 at once (no shutdown that could commit or hang)."""
    metrics.errors.labels(agent).inc()
    logger.critical("%s agent stopped: %s", agent, one_line(exc), exc_info=exc)
    print(f"sentinel worker: the {agent} agent stopped ({one_line(exc)}); exiting so that "
          "its supervisor restarts it", file=sys.stderr, flush=True)
    os._exit(EXIT_AGENT_DIED)


def new_metrics() -> Metrics:
    return Metrics(CollectorRegistry())
