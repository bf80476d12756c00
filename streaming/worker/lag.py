"""``sentinel_consumer_lag``: partition end minus the group's committed offset, for owned inputs.

The committed offset, not the fetch position: a stuck agent leaves the position running
ahead (records fetched, buffered, never processed) while the committed offset stays
where processing stopped, so only this lag grows when nothing is processed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from streaming.metrics import Metrics
from streaming.worker.consumer_control import committed_offset


class LagReporter:
    """Sets one gauge per owned input partition; drops the series of revoked ones."""

    def __init__(self, consumer: Any, metrics: Metrics, sources: set[str]) -> None:
        self.consumer, self.metrics, self.sources = consumer, metrics, sources
        self.seen: dict[TP, int] = {}  # last committed offset read per partition

    async def report(self) -> None:
        consumer = self.consumer
        owned = [tp for tp in consumer.assignment() if tp.topic in self.sources]
        self._forget_revoked({(tp.topic, str(tp.partition)) for tp in owned})
        if not owned:
            return
        highwaters = await consumer.highwaters(*owned)
        # Concurrently: one slow lookup (no commit yet) must not stretch the timer past its interval.
        committed_offsets = await asyncio.gather(*(_committed(consumer, tp, self.seen) for tp in owned))
        for tp, committed in zip(owned, committed_offsets, strict=True):
            if committed is not None:
                lag = max(0, highwaters.get(tp, committed) - committed)
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    def _forget_revoked(self, owned: set[tuple[str, str]]) -> None:
        """Drop lag series of partitions a rebalance took away, so no stale value lingers."""
        for metric in self.metrics.consumer_lag.collect():
            for sample in metric.samples:
                key = (sample.labels["topic"], sample.labels["partition"])
                if key not in owned:
                    self.metrics.consumer_lag.remove(*key)


async def _committed(consumer: Any, tp: TP, seen: dict[TP, int]) -> int | None:
    try:
        return await asyncio.wait_for(committed_offset(consumer, tp, seen), timeout=2.0)
    except Exception:  # a partition being revoked mid-call; the next tick retries
        return None
