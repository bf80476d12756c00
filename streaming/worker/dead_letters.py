"""The dead-letter topic: every record the worker cannot process, with its reason, counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from faust.types import EventT

from streaming.errors import InvalidMessage
from streaming.metrics import Metrics

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
        value = msg.value
        raw = (bytes(value) if isinstance(value, bytes | bytearray)
               else b"" if value is None else str(value).encode())  # a tombstone has no payload
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
    """A record that failed validation, kept with its event until the batch publishes."""

    event: EventT
    error: InvalidMessage

