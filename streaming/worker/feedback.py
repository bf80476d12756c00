"""The feedback agent: decode -> tokenise and classify (off the loop) -> sentiment + escalations.

Invalid input goes to the dead-letter topic; outputs are acknowledged before the
batch's input offsets are released, in batch order (``InFlight``): duplicates are
possible after a crash, never a loss.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from faust.types import EventT

from streaming import topics
from streaming.core.schemas import DEFAULT_ALLOWED_HEADERS, Feedback, check_envelope, decode_feedback
from streaming.errors import InvalidMessage, one_line
from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry
from streaming.serving.pipeline import Record, classify_feedback
from streaming.worker.commit_ledger import CommitLedger, highest_offsets
from streaming.worker.dead_letters import DeadLetters, Invalid, Send
from streaming.worker.in_flight import InFlight

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FeedbackBatch:
    started: float
    size: int
    invalid: list[Invalid] = field(default_factory=list)
    results: list[tuple[Record, Record | None]] = field(default_factory=list)
    offsets: dict[Any, int] = field(default_factory=dict)  # highest offset per partition


class FeedbackHandler:
    """``prepare`` (decode, tokenise, classify) then ``finish`` (publish, acks)."""

    def __init__(self, send: Send, settings_topic: Callable[[str], str],
                 models: ModelRegistry, metrics: Metrics, dead_letters: DeadLetters,
                 max_bytes: int, executor: ThreadPoolExecutor, *,
                 allowed_headers: frozenset[str] = DEFAULT_ALLOWED_HEADERS,
                 ledger: CommitLedger | None = None, in_flight: InFlight | None = None) -> None:
        self.in_flight = in_flight or InFlight(limit=0)  # 0: each batch completes inside finish
        self.allowed_headers = allowed_headers
        self.ledger = ledger or CommitLedger()
        self.send, self.models, self.metrics = send, models, metrics
        self.dead_letters, self.max_bytes, self.executor = dead_letters, max_bytes, executor
        self.source_topic = settings_topic(topics.FEEDBACK)
        self.sentiment_topic = settings_topic(topics.SENTIMENT)
        self.escalation_topic = settings_topic(topics.ESCALATIONS)

    async def handle(self, events: Sequence[EventT]) -> None:
        await self.finish(await self.prepare(events))

    async def prepare(self, events: Sequence[EventT]) -> FeedbackBatch:
        batch = FeedbackBatch(started=time.perf_counter(), size=len(events), offsets=highest_offsets(events))
        messages: list[Feedback] = []
        owners: list[EventT] = []
        for event in events:
            msg = event.message
            try:
                check_envelope(msg.value, msg.key, getattr(msg, "headers", None), self.allowed_headers)
                messages.append(decode_feedback(bytes(msg.value or b""), self.max_bytes))
                owners.append(event)
            except InvalidMessage as exc:
                batch.invalid.append(Invalid(event, exc))
        if messages:
            classifier = self.models.classifier  # read once: the whole batch sees one version
            loop = asyncio.get_running_loop()
            t0 = time.perf_counter()
            try:
                batch.results = await loop.run_in_executor(
                    self.executor, classify_feedback, messages, classifier)
            except Exception as exc:  # find the messages that cause it; classify the others
                logger.warning("feedback batch of %d failed (%s); retrying message by message",
                               len(messages), one_line(exc))
                for event, message in zip(owners, messages, strict=True):
                    try:
                        batch.results += await loop.run_in_executor(
                            self.executor, classify_feedback, [message], classifier)
                    except Exception as one:
                        self.metrics.errors.labels("feedback").inc()
                        error = InvalidMessage("processing_error", one_line(one))
                        batch.invalid.append(Invalid(event, error))
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
        await self.in_flight.add(pending, partial(self._complete, batch))

    async def _complete(self, batch: FeedbackBatch) -> None:
        self.ledger.finished(batch.offsets, stateless=True)  # no state: committable at once
        if batch.results:
            self.metrics.messages.labels(self.source_topic, "ok").inc(len(batch.results))
        self.metrics.batch_seconds.labels("feedback").observe(time.perf_counter() - batch.started)
        self.metrics.batch_size.labels("feedback").observe(batch.size)
