"""Thin Faust glue: decode -> pure pipeline -> publish + count.

Invalid input never raises out of here: it goes to the dead-letter topic with its
reason and a counter. Output sends of a batch are awaited before the batch's input
offsets are acknowledged, so a crash can duplicate results but never lose them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from faust.streams import _current_event
from faust.types import EventT, TableT

from streaming import topics
from streaming.detector import ResidualDetector
from streaming.errors import InvalidMessage
from streaming.metrics import Metrics
from streaming.model_registry import ModelRegistry
from streaming.pipeline import Record, classify_feedback, process_ticks
from streaming.schemas import Feedback, Tick, decode_feedback, decode_ticks
from streaming.windows import SymbolState

logger = logging.getLogger(__name__)
MAX_DEAD_LETTER_PAYLOAD = 65_536
Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]


def now_ms() -> int:
    return int(time.time() * 1000)


class DeadLetters:
    """Writes invalid messages to ``sentinel.dead-letter`` with a reason, and counts them."""

    def __init__(self, send: Send, topic: str, metrics: Metrics) -> None:
        self.send = send
        self.topic = topic
        self.metrics = metrics

    async def publish(self, event: EventT, error: InvalidMessage) -> Any:
        msg = event.message
        raw = msg.value if isinstance(msg.value, bytes) else bytes(str(msg.value), "utf-8")
        record = {"source_topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
                  "error": str(error), "reason": error.reason,
                  "payload": raw[:MAX_DEAD_LETTER_PAYLOAD].decode("utf-8", errors="replace")
                  [:MAX_DEAD_LETTER_PAYLOAD], "ts": now_ms()}
        self.metrics.dead_letters.labels(msg.topic, error.reason).inc()
        self.metrics.messages.labels(msg.topic, "invalid").inc()
        # Offsets only at DEBUG: payloads never reach INFO logs.
        logger.debug("dead letter topic=%s partition=%s offset=%s reason=%s",
                     msg.topic, msg.partition, msg.offset, error.reason)
        return await self.send(self.topic, msg.key, orjson.dumps(record))


class PriceHandler:
    def __init__(self, table: TableT, send: Send, settings_topic: Callable[[str], str],
                 models: ModelRegistry, detector: ResidualDetector, metrics: Metrics,
                 dead_letters: DeadLetters, max_bytes: int, executor: ThreadPoolExecutor) -> None:
        self.table, self.send, self.models, self.detector = table, send, models, detector
        self.metrics, self.dead_letters, self.max_bytes = metrics, dead_letters, max_bytes
        self.executor = executor
        self.forecast_topic = settings_topic(topics.FORECASTS)
        self.anomaly_topic = settings_topic(topics.ANOMALIES)
        self.source_topic = settings_topic(topics.TICKS)
        self.symbols: set[str] = set()

    async def handle(self, events: Sequence[EventT]) -> None:
        start = time.perf_counter()
        pending: list[Any] = []
        ticks: list[Tick] = []
        owner: dict[str, EventT] = {}
        for event in events:
            try:
                decoded = decode_ticks(event.value, self.max_bytes)
            except InvalidMessage as exc:
                pending.append(await self.dead_letters.publish(event, exc))
                continue
            ticks.extend(decoded)
            owner[decoded[0].symbol] = event
        if ticks:
            await self._process(ticks, owner, pending)
        await asyncio.gather(*pending)
        self.metrics.batch_seconds.labels("prices").observe(time.perf_counter() - start)
        self.metrics.batch_size.labels("prices").observe(len(events))

    async def _process(self, ticks: list[Tick], owner: dict[str, EventT], pending: list[Any]) -> None:
        states = {s: SymbolState.from_dict(self.table.get(s)) for s in owner}
        forecaster = self.models.forecaster  # read once: the whole batch sees one version
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        result = await loop.run_in_executor(self.executor, process_ticks, ticks, states,
                                            forecaster, self.detector)
        if result.inference_rows:
            model = forecaster.manifest.name
            self.metrics.inference_seconds.labels(model).observe(time.perf_counter() - t0)
            self.metrics.inference_batch.labels(model).observe(result.inference_rows)
        # Outputs are acknowledged by the broker before the state moves on: a crash in
        # between replays the batch against the old state (duplicates, never a loss).
        await asyncio.gather(*await self._publish(result.forecasts, result.anomalies))
        for symbol in result.touched:
            write_table(self.table, owner[symbol], symbol, states[symbol].to_dict())
        for symbol in result.touched - self.symbols:
            self.metrics.prime_symbol(symbol)
        self.symbols.update(result.touched)
        self.metrics.symbols_tracked.set(len(self.symbols))
        self.metrics.messages.labels(self.source_topic, "ok").inc(result.accepted)
        if result.late:
            self.metrics.messages.labels(self.source_topic, "late").inc(result.late)

    async def _publish(self, forecasts: list[Record], anomalies: list[Record]) -> list[Any]:
        futures = []
        for rec in forecasts:
            futures.append(await self.send(self.forecast_topic, rec["symbol"].encode(), orjson.dumps(rec)))
        for rec in anomalies:
            futures.append(await self.send(self.anomaly_topic, rec["symbol"].encode(), orjson.dumps(rec)))
            self.metrics.anomalies.labels(rec["symbol"], rec["severity"]).inc()
            self.metrics.last_anomaly_score.labels(rec["symbol"]).set(rec["score"])
            self.metrics.last_anomaly_time.labels(rec["symbol"]).set(rec["ts"] / 1000)
        self.metrics.forecasts.inc(len(forecasts))
        if forecasts:
            latency = self.metrics.end_to_end.labels(self.source_topic)
            now = time.time()
            for rec in forecasts:
                latency.observe(max(0.0, now - rec["ts"] / 1000))
        return futures


def write_table(table: TableT, event: EventT, key: str, value: Any) -> None:
    """Set a table key as if while processing ``event``.

    Faust sends the changelog entry to the partition of the *current* event; in a
    batch from ``take_events`` that is the last event, which may belong to another
    partition. Pointing the context at the event that owns the key keeps the
    changelog co-partitioned with the source topic.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)


class FeedbackHandler:
    def __init__(self, send: Send, settings_topic: Callable[[str], str],
                 models: ModelRegistry, metrics: Metrics, dead_letters: DeadLetters,
                 max_bytes: int, executor: ThreadPoolExecutor) -> None:
        self.send, self.models, self.metrics = send, models, metrics
        self.dead_letters, self.max_bytes, self.executor = dead_letters, max_bytes, executor
        self.source_topic = settings_topic(topics.FEEDBACK)
        self.sentiment_topic = settings_topic(topics.SENTIMENT)
        self.escalation_topic = settings_topic(topics.ESCALATIONS)

    async def handle(self, events: Sequence[EventT]) -> None:
        start = time.perf_counter()
        pending: list[Any] = []
        messages: list[Feedback] = []
        for event in events:
            try:
                messages.append(decode_feedback(event.value, self.max_bytes))
            except InvalidMessage as exc:
                pending.append(await self.dead_letters.publish(event, exc))
        if messages:
            pending.extend(await self._process(messages))
        await asyncio.gather(*pending)
        self.metrics.batch_seconds.labels("feedback").observe(time.perf_counter() - start)
        self.metrics.batch_size.labels("feedback").observe(len(events))

    async def _process(self, messages: list[Feedback]) -> list[Any]:
        classifier = self.models.classifier  # read once: the whole batch sees one version
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        results = await loop.run_in_executor(self.executor, classify_feedback, messages, classifier)
        model = classifier.manifest.name
        self.metrics.inference_seconds.labels(model).observe(time.perf_counter() - t0)
        self.metrics.inference_batch.labels(model).observe(len(messages))
        futures = []
        now = time.time()
        for sentiment, escalation in results:
            key = sentiment["id"].encode()
            futures.append(await self.send(self.sentiment_topic, key, orjson.dumps(sentiment)))
            self.metrics.sentiment.labels(sentiment["label"]).inc()
            if escalation is not None:
                futures.append(await self.send(self.escalation_topic, key, orjson.dumps(escalation)))
                self.metrics.escalations.labels(escalation["priority"]).inc()
            self.metrics.end_to_end.labels(self.source_topic).observe(max(0.0, now - sentiment["ts"] / 1000))
        self.metrics.messages.labels(self.source_topic, "ok").inc(len(messages))
        return futures
