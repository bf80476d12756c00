"""From a Faust stream to a handler: batching, the offset guard and the optional two-stage pipe."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, cast

from faust.streams import Stream
from faust.types import TP, EventT, StreamT

from streaming.metrics import Metrics
from streaming.worker.batch_pipe import BatchPipe
from streaming.worker.consumer_control import committed_offset, seek
from streaming.worker.offset_guard import OffsetGuard, Verdict

logger = logging.getLogger(__name__)


class Handler(Protocol):
    """What an agent's handler offers: both stages at once, or ``prepare`` then ``finish``."""

    async def handle(self, events: Sequence[EventT]) -> None: ...
    async def prepare(self, events: Sequence[EventT]) -> Any: ...
    async def finish(self, batch: Any) -> None: ...


class BatchIntake:
    """Runs one agent: batches from ``take_events``, admitted by the offset guard, to the handler.

    One instance per agent; ``consumer`` is Faust's (for committed offsets and seeks).
    ``pipeline_depth`` > 0 prepares the next batch while this one publishes (opt-in).
    """

    def __init__(self, handler: Handler, consumer: Any, metrics: Metrics, max_batch: int,
                 within_s: float, pipeline_depth: int = 0) -> None:
        self.handler, self.consumer, self.metrics = handler, consumer, metrics
        self.max_batch, self.within_s, self.pipeline_depth = max_batch, within_s, pipeline_depth
        self.guard = OffsetGuard()

    async def run(self, stream: StreamT) -> None:
        self.guard = OffsetGuard()  # a restarted agent starts from the committed offsets again
        batches = cast(Stream, stream).take_events(self.max_batch, within=self.within_s)
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
                guard.start(tp, message.generation_id, await committed_offset(self.consumer, tp))
            verdict, seek_to = guard.check(tp, message.offset)
            if verdict is Verdict.PROCESS:
                keep.append(event)
            elif verdict is Verdict.HOLD:
                message.incref()  # take_events' ack now leaves it unacknowledged: never committed
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
