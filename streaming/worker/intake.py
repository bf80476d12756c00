"""From a Faust stream to a handler: batching, the offset guard and the optional two-stage pipe."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from faust.types import TP, EventT, StreamT

from streaming.metrics import Metrics
from streaming.worker.batch_pipe import BatchPipe
from streaming.worker.consumer_control import committed_offset, seek
from streaming.worker.offset_guard import OffsetGuard, Verdict
from streaming.worker.take import take_ready

logger = logging.getLogger(__name__)


Take = Callable[[Any, int, float], AsyncIterator[list[EventT]]]


class Handler(Protocol):
    """What an agent's handler offers: both stages at once, or ``prepare`` then ``finish``."""

    async def handle(self, events: Sequence[EventT]) -> None: ...
    async def prepare(self, events: Sequence[EventT]) -> Any: ...
    async def finish(self, batch: Any) -> None: ...


class HoleProbe:
    """Which offset really comes next in a partition: a group-less consumer's first fetch from there.

    A fetch from offset ``E`` returns the first record at or after ``E`` that this
    isolation level sees, so a first record above ``E`` proves ``E`` and what follows up to
    it hold no records (transaction markers, compacted or expired records).
    """

    def __init__(self, client_kwargs: dict[str, Any], isolation_level: str = "read_uncommitted",
                 timeout_s: float = 2.0) -> None:
        self.client_kwargs, self.isolation_level, self.timeout_s = client_kwargs, isolation_level, timeout_s
        self._consumer: Any = None

    async def next_offset(self, tp: TP, offset: int) -> int | None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(**self.client_kwargs, group_id=None, enable_auto_commit=False,
                                              isolation_level=self.isolation_level,
                                              auto_offset_reset="earliest")
            await self._consumer.start()
        part = TopicPartition(tp.topic, tp.partition)
        self._consumer.assign([part])
        self._consumer.seek(part, offset)
        batch = await self._consumer.getmany(part, timeout_ms=int(self.timeout_s * 1000), max_records=1)
        records = batch.get(part) or []
        return int(records[0].offset) if records else None

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


class BatchIntake:
    """Runs one agent: batches from ``take_events``, admitted by the offset guard, to the handler.

    One instance per agent; ``consumer`` is Faust's (for committed offsets and seeks).
    ``pipeline_depth`` > 0 prepares the next batch while this one publishes (opt-in).
    """

    def __init__(self, handler: Handler, consumer: Any, metrics: Metrics, max_batch: int,
                 within_s: float, pipeline_depth: int = 0, probe: HoleProbe | None = None,
                 take: Take = take_ready, hold_by_reference: bool = True) -> None:
        self.handler, self.consumer, self.metrics, self.probe = handler, consumer, metrics, probe
        self.take = take
        # Held events keep a reference (never acknowledged) only where Faust's own commits
        # count (exactly-once). With the commit ledger, acknowledging them commits nothing,
        # and an unreleased reference would make a stop or rebalance mid-rewind wait forever
        # for them ("Wait for streams", then the 8-s shutdown deadline).
        self.hold_by_reference = hold_by_reference
        self._probed: dict[TP, int] = {}
        self.max_batch, self.within_s, self.pipeline_depth = max_batch, within_s, pipeline_depth
        self.guard = OffsetGuard()
        self.seen: dict[TP, int] = {}  # last committed offset read per partition (``committed_offset``)

    async def run(self, stream: StreamT) -> None:
        self.guard = OffsetGuard()  # a restarted agent starts from the committed offsets again
        self._probed.clear()
        batches = self.take(stream, self.max_batch, self.within_s)
        if self.pipeline_depth <= 0:  # exactly-once also lands here: sends join the event's transaction
            async for events in batches:
                if admitted := await self.admit(events):
                    await self.handler.handle(admitted)
            return
        pipe: BatchPipe[Any] = BatchPipe(stream, self.handler.prepare, self.handler.finish,
                                         depth=self.pipeline_depth)
        try:
            async for events in batches:
                if admitted := await self.admit(events):
                    await pipe.put(admitted)
        finally:
            await pipe.stop()

    async def admit(self, events: Sequence[EventT]) -> list[EventT]:
        """The events to process: none skipped silently (streaming/worker/offset_guard.py)."""
        guard = self.guard
        keep: list[EventT] = []
        seeks: dict[TP, int] = {}
        rewinds, holes = guard.rewinds, guard.holes_accepted
        for event in events:
            message = event.message
            tp = message.tp
            if guard.needs_start(tp, message.generation_id):
                guard.start(tp, message.generation_id, await committed_offset(self.consumer, tp, self.seen))
            verdict, seek_to = guard.check(tp, message.offset)
            if verdict is Verdict.HOLD and await self._skip_real_hole(tp):
                rewinds = guard.rewinds  # a hole in the log, not a record Faust skipped
                verdict, seek_to = guard.check(tp, message.offset)
            if verdict is Verdict.PROCESS:
                keep.append(event)
            elif verdict is Verdict.HOLD and self.hold_by_reference:
                message.incref()  # the take loop's ack now leaves it unacknowledged: never committed
            if seek_to is not None:
                if tp not in seeks and guard.rewinds > rewinds:
                    logger.warning("%s[%d]: offset %d never reached the agent (got %d); rewinding",
                                   tp.topic, tp.partition, seek_to, message.offset)
                    self.metrics.offset_rewinds.labels(tp.topic).inc()
                seeks[tp] = seek_to
            if guard.holes_accepted > holes:
                logger.error("%s[%d]: offsets below %d never arrived after %.0f s of rewinds; "
                             "taking them for a hole in the log and moving on", tp.topic, tp.partition,
                             seek_to, guard.hole_timeout_s)
            rewinds, holes = guard.rewinds, guard.holes_accepted
        for tp, offset in seeks.items():
            await seek(self.consumer, tp, offset)
        return keep

    async def _skip_real_hole(self, tp: TP) -> bool:
        """Ask the broker once per gap whether the missing offset holds a record at all."""
        expected = self.guard.expected(tp)
        if self.probe is None or self._probed.get(tp) == expected:
            return False
        self._probed[tp] = expected
        try:
            nxt = await self.probe.next_offset(tp, expected)
        except Exception as exc:  # the probe is an optimisation: the guard's timeout still holds
            logger.warning("%s[%d]: hole probe failed (%s)", tp.topic, tp.partition, exc)
            return False
        if nxt is None or nxt <= expected:
            return False
        logger.info("%s[%d]: offsets %d..%d hold no records (transaction markers or compaction)",
                    tp.topic, tp.partition, expected, nxt - 1)
        self.guard.skip_to(tp, nxt)
        return True
