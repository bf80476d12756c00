"""Batches whose outputs are sent and not yet acknowledged: completed in order, off the batch cycle.

A handler that awaited its batch's acknowledgements before taking the next batch left the
event loop idle for a producer linger and a broker round trip per batch (and the changelog
write's on top): at 500 ticks/s a batch of ~20-60 ticks took 17-40 ms from its first event
to its acknowledged outputs (docs/benchmarks.md). Here ``add`` queues a batch's send
futures with what must happen once they are acknowledged (its offsets become finished,
its checkpoint is written); one task completes the batches strictly in the order they
were added, so offsets still move only behind acknowledged outputs and state. At most
``limit`` batches wait (back-pressure on the agent); ``limit`` 0 completes each batch
inside ``add`` (exactly-once, whose sends join the batch's transaction).

A failed acknowledgement stops the completions (no later offset can become committable)
and is reported to ``on_error``, which in the worker ends the process like a dead agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

logger = logging.getLogger(__name__)
Then = Callable[[], Awaitable[None]]


class InFlight:
    def __init__(self, limit: int = 8, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.limit = limit
        self.on_error = on_error
        self._queue: asyncio.Queue[tuple[list[Any], Then]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = 0  # batches added and not completed
        self._idle = asyncio.Event()
        self._idle.set()
        self.error: BaseException | None = None

    @property
    def waiting(self) -> int:
        return self._busy

    async def add(self, futures: Iterable[Any], then: Then) -> None:
        """Queue a batch: ``then`` runs once every future in ``futures`` is done, after earlier batches."""
        self._raise_if_failed()
        pending = list(futures)
        if self.limit <= 0:
            await asyncio.gather(*pending)
            await then()
            return
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self.limit)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._complete(self._queue), name="in-flight completions")
        self._busy += 1
        self._idle.clear()
        await self._queue.put((pending, then))

    async def drain(self) -> None:
        """Until every batch added so far is completed (rebalance, stop, tests)."""
        while self._busy and self.error is None:
            await self._idle.wait()
        self._raise_if_failed()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _complete(self, queue: asyncio.Queue[tuple[list[Any], Then]]) -> None:
        while True:
            pending, then = await queue.get()
            try:
                await asyncio.gather(*pending)
                await then()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - nothing after it may complete
                self.error = exc
                self._idle.set()
                logger.error("a batch's outputs or state were not acknowledged: %r", exc)
                if self.on_error is not None:
                    self.on_error(exc)
                return
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"outputs not acknowledged: {self.error!r}") from self.error
