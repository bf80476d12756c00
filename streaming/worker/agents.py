"""Thin Faust glue: decode -> pure pipeline -> publish + count.

Invalid input never raises out of here: it goes to the dead-letter topic with its
reason and a counter. Each handler has two stages, ``prepare`` (no I/O but the
executor) and ``finish`` (publishing); output sends of a batch are awaited before the
batch's state is written and its input offsets are released, so a crash can
duplicate results but never lose them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.streams import _current_event
from faust.types import EventT, TableT

from streaming import topics
from streaming.core.detector import ResidualDetector
from streaming.core.schemas import Feedback, Tick, decode_feedback, decode_ticks
from streaming.core.windows import SymbolState
from streaming.errors import InvalidMessage
from streaming.metrics import Metrics
from streaming.serving.inference import Forecaster
from streaming.serving.model_registry import ModelRegistry
from streaming.serving.pipeline import PriceResult, Record, classify_feedback, process_ticks

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


@dataclass(slots=True)
class Invalid:
    event: EventT
    error: InvalidMessage


@dataclass(slots=True)
class PriceBatch:
    """What ``prepare`` hands to ``finish``: outputs and state snapshots, nothing sent yet."""

    seq: int
    started: float
    size: int
    invalid: list[Invalid] = field(default_factory=list)
    result: PriceResult | None = None
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    owner: dict[str, EventT] = field(default_factory=dict)


def _process_and_snapshot(ticks: list[Tick], states: dict[str, SymbolState], forecaster: Forecaster,
                          detector: ResidualDetector) -> tuple[PriceResult, dict[str, dict[str, Any]]]:
    result = process_ticks(ticks, states, forecaster, detector)
    return result, {s: states[s].to_dict() for s in result.touched}


class PriceHandler:
    """``prepare`` (decode, state, inference, scoring) then ``finish`` (publish, acks, table).

    The next batch may be prepared while this one finishes (``BatchPipe``), so states
    moved by a prepared batch stay in ``inflight`` until its table write: the next
    batch continues from them, not from the table's older value.
    """

    def __init__(self, table: TableT, send: Send, settings_topic: Callable[[str], str],
                 models: ModelRegistry, detector: ResidualDetector, metrics: Metrics,
                 dead_letters: DeadLetters, max_bytes: int, executor: ThreadPoolExecutor,
                 state_writer: AckedChangelog | FaustChangelog | None = None) -> None:
        self.table, self.send, self.models, self.detector = table, send, models, detector
        self.state_writer = state_writer or FaustChangelog(table)
        self.metrics, self.dead_letters, self.max_bytes = metrics, dead_letters, max_bytes
        self.executor = executor
        self.forecast_topic = settings_topic(topics.FORECASTS)
        self.anomaly_topic = settings_topic(topics.ANOMALIES)
        self.source_topic = settings_topic(topics.TICKS)
        self.symbols: set[str] = set()
        self.inflight: dict[str, tuple[SymbolState, int]] = {}
        self._seq = 0

    async def handle(self, events: Sequence[EventT]) -> None:
        """Both stages in one call (tests, exactly-once mode)."""
        await self.finish(await self.prepare(events))

    async def prepare(self, events: Sequence[EventT]) -> PriceBatch:
        batch = PriceBatch(seq=self._seq, started=time.perf_counter(), size=len(events))
        self._seq += 1
        ticks: list[Tick] = []
        for event in events:
            try:
                decoded = decode_ticks(event.value, self.max_bytes)
            except InvalidMessage as exc:
                batch.invalid.append(Invalid(event, exc))
                continue
            ticks.extend(decoded)
            batch.owner[decoded[0].symbol] = event
        if not ticks:
            return batch
        states = {s: self._state(s) for s in batch.owner}
        forecaster = self.models.forecaster  # read once: the whole batch sees one version
        t0 = time.perf_counter()
        result, batch.snapshots = await asyncio.get_running_loop().run_in_executor(
            self.executor, _process_and_snapshot, ticks, states, forecaster, self.detector)
        batch.result = result
        if result.inference_rows:
            model = forecaster.manifest.name
            self.metrics.inference_seconds.labels(model).observe(time.perf_counter() - t0)
            self.metrics.inference_batch.labels(model).observe(result.inference_rows)
        for symbol in result.touched:
            self.inflight[symbol] = (states[symbol], batch.seq)
        return batch

    async def finish(self, batch: PriceBatch) -> None:
        pending = [await self.dead_letters.publish(bad.event, bad.error) for bad in batch.invalid]
        result = batch.result
        if result is not None:
            pending.extend(await self._publish(result.forecasts, result.anomalies))
        # Outputs are acknowledged by the broker before the state moves on: a crash in
        # between replays the batch against the old state (duplicates, never a loss).
        await asyncio.gather(*pending)
        if result is not None:
            await self.state_writer.write([(batch.owner[s], s, v) for s, v in batch.snapshots.items()])
            self._settle(batch, result)
        self.metrics.batch_seconds.labels("prices").observe(time.perf_counter() - batch.started)
        self.metrics.batch_size.labels("prices").observe(batch.size)

    def _state(self, symbol: str) -> SymbolState:
        entry = self.inflight.get(symbol)
        return entry[0] if entry is not None else SymbolState.from_dict(self.table.get(symbol))

    def _settle(self, batch: PriceBatch, result: PriceResult) -> None:
        for symbol in batch.snapshots:
            entry = self.inflight.get(symbol)
            if entry is not None and entry[1] == batch.seq:  # no later batch moved it since
                del self.inflight[symbol]
        for symbol in result.touched - self.symbols:
            self.metrics.prime_symbol(symbol)
        self.symbols.update(result.touched)
        self.metrics.symbols_tracked.set(len(self.symbols))
        self.metrics.messages.labels(self.source_topic, "ok").inc(result.accepted)
        if result.late:
            self.metrics.messages.labels(self.source_topic, "late").inc(result.late)

    async def _publish(self, forecasts: list[Record], anomalies: list[Record]) -> list[Any]:
        futures = []
        send, topic = self.send, self.forecast_topic
        for rec in forecasts:
            futures.append(await send(topic, rec["symbol"].encode(), orjson.dumps(rec)))
        for rec in anomalies:
            futures.append(await send(self.anomaly_topic, rec["symbol"].encode(), orjson.dumps(rec)))
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


StateItem = tuple[EventT, str, dict[str, Any]]  # (event that owns the key, key, new value)
PartitionSend = Callable[[str, bytes, bytes, int], Awaitable[Any]]


class AckedChangelog:
    """Table writes whose changelog records are acknowledged before offsets move.

    Faust's own path (``table[key] = value``) queues the changelog record in its
    producer buffer; the pre-commit flush gives up after 0.1 s without progress and
    does not count the record its sender task has already taken off the queue, so
    input offsets can be committed whose state never reached the changelog. A
    ``kill -9`` then restores an older state, the ticks in between are never replayed,
    and each affected symbol's window silently misses them (the crash test caught 440
    lost forecasts that way, and single missing ticks in 2 of 14 runs). Here the records are sent
    to the owning event's partition, in JSON as Faust's ``json`` serializer writes them
    (so Faust's recovery reads them back), awaited, and only then put in the store.
    """

    def __init__(self, table: TableT, send: PartitionSend) -> None:
        self.table, self.send = table, send
        self.topic = table.changelog_topic.get_topic_name()

    async def write(self, items: list[StateItem]) -> None:
        send, topic = self.send, self.topic
        futures = [await send(topic, orjson.dumps(key), orjson.dumps(value), event.message.partition)
                   for event, key, value in items]
        await asyncio.gather(*futures)
        store = self.table.data
        for _, key, value in items:
            store[key] = value


class FaustChangelog:
    """Faust's own table writes: what exactly-once needs (the records join the transaction)."""

    def __init__(self, table: TableT) -> None:
        self.table = table

    async def write(self, items: list[StateItem]) -> None:
        for event, key, value in items:
            write_table(self.table, event, key, value)


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


@dataclass(slots=True)
class FeedbackBatch:
    started: float
    size: int
    invalid: list[Invalid] = field(default_factory=list)
    results: list[tuple[Record, Record | None]] = field(default_factory=list)


class FeedbackHandler:
    """``prepare`` (decode, tokenise, classify) then ``finish`` (publish, acks)."""

    def __init__(self, send: Send, settings_topic: Callable[[str], str],
                 models: ModelRegistry, metrics: Metrics, dead_letters: DeadLetters,
                 max_bytes: int, executor: ThreadPoolExecutor) -> None:
        self.send, self.models, self.metrics = send, models, metrics
        self.dead_letters, self.max_bytes, self.executor = dead_letters, max_bytes, executor
        self.source_topic = settings_topic(topics.FEEDBACK)
        self.sentiment_topic = settings_topic(topics.SENTIMENT)
        self.escalation_topic = settings_topic(topics.ESCALATIONS)

    async def handle(self, events: Sequence[EventT]) -> None:
        await self.finish(await self.prepare(events))

    async def prepare(self, events: Sequence[EventT]) -> FeedbackBatch:
        batch = FeedbackBatch(started=time.perf_counter(), size=len(events))
        messages: list[Feedback] = []
        for event in events:
            try:
                messages.append(decode_feedback(event.value, self.max_bytes))
            except InvalidMessage as exc:
                batch.invalid.append(Invalid(event, exc))
        if messages:
            classifier = self.models.classifier  # read once: the whole batch sees one version
            t0 = time.perf_counter()
            batch.results = await asyncio.get_running_loop().run_in_executor(
                self.executor, classify_feedback, messages, classifier)
            model = classifier.manifest.name
            self.metrics.inference_seconds.labels(model).observe(time.perf_counter() - t0)
            self.metrics.inference_batch.labels(model).observe(len(messages))
        return batch

    async def finish(self, batch: FeedbackBatch) -> None:
        pending = [await self.dead_letters.publish(bad.event, bad.error) for bad in batch.invalid]
        now = time.time()
        latency = self.metrics.end_to_end.labels(self.source_topic)
        for sentiment, escalation in batch.results:
            key = sentiment["id"].encode()
            pending.append(await self.send(self.sentiment_topic, key, orjson.dumps(sentiment)))
            self.metrics.sentiment.labels(sentiment["label"]).inc()
            if escalation is not None:
                pending.append(await self.send(self.escalation_topic, key, orjson.dumps(escalation)))
                self.metrics.escalations.labels(escalation["priority"]).inc()
            latency.observe(max(0.0, now - sentiment["ts"] / 1000))
        await asyncio.gather(*pending)
        if batch.results:
            self.metrics.messages.labels(self.source_topic, "ok").inc(len(batch.results))
        self.metrics.batch_seconds.labels("feedback").observe(time.perf_counter() - batch.started)
        self.metrics.batch_size.labels("feedback").observe(batch.size)
