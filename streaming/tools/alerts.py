"""``sentinel alerts tail``: follow the alert topics, filter, de-duplicate, print.

Delivery is at least once, so the consumer drops repeats by the deterministic
``alert_id`` (a bounded memory of recent ids).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streaming import topics
from streaming.core.detector import SEVERITIES
from streaming.kafka.admin import client_kwargs, ensure_topics
from streaming.settings import Settings

PRIORITIES = ("P3", "P2", "P1")


class RecentIds:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, alert_id: str) -> bool:
        if alert_id in self.ids:
            return True
        self.ids[alert_id] = None
        if len(self.ids) > self.capacity:
            self.ids.popitem(last=False)
        return False


def passes(alert: dict[str, Any], min_severity: str, min_priority: str) -> bool:
    if "severity" in alert:
        return SEVERITIES.index(alert["severity"]) >= SEVERITIES.index(min_severity)
    if "priority" in alert:
        return PRIORITIES.index(alert["priority"]) >= PRIORITIES.index(min_priority)
    return True


def _when(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def format_alert(alert: dict[str, Any]) -> str:
    if alert.get("kind") == "volume":
        return (f"[{alert['severity'].upper():8}] {alert['symbol']:<8} {_when(alert['ts'])} "
                f"volume={alert['volume']:,.0f} typical={alert['expected']:,.0f} "
                f"score={alert['score']:.3f} (threshold {alert['threshold']:.2f}) volume")
    if "severity" in alert:
        return (f"[{alert['severity'].upper():8}] {alert['symbol']:<8} {_when(alert['ts'])} "
                f"price={alert['price']:.4f} expected={alert['expected']:.4f} "
                f"score={alert['score']:.3f} (threshold {alert['threshold']:.2f}) {alert['model']}")
    return (f"[{alert['priority']:8}] feedback {alert['id']}: {alert['reason']} | "
            f"{alert['text_excerpt'][:100]}")


async def tail(settings: Settings, emit: Callable[[dict[str, Any]], None], *,
               topic_names: list[str] | None = None, min_severity: str = "low",
               min_priority: str = "P3", from_beginning: bool = False,
               stop: asyncio.Event | None = None, group_id: str | None = None) -> int:
    """Consume alerts until ``stop`` is set; returns how many were emitted."""
    await ensure_topics(settings)
    names = [settings.topic(t) for t in (topic_names or topics.ALERT_TOPICS)]
    consumer = AIOKafkaConsumer(*names, **client_kwargs(settings),
                                group_id=group_id or f"sentinel-alerts-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    recent, emitted = RecentIds(), 0
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    alert = orjson.loads(record.value)
                    if recent.seen(alert["alert_id"]) or not passes(alert, min_severity, min_priority):
                        continue
                    emit(alert)
                    emitted += 1
    finally:
        await consumer.stop()
    return emitted
