"""Two-stage batch pipeline: batch k+1 is decoded and inferred while batch k publishes.

Faust's ``take_events`` stops buffering while the agent body runs, so a body that
infers, then publishes, then awaits the broker's acks leaves the consumer idle most of
the time. Here the agent only hands each batch over; a ``prepare`` task (decode, state,
inference) and a ``finish`` task (publish, await acks, table writes) run it, each in
batch order, with at most ``depth`` batches waiting between stages (back-pressure).

Offsets still move only after results are durable: every event's message gets one
extra reference before the take loop acks it, and ``finish`` releases it after the
outputs are acknowledged and the state is written. Faust commits only released
offsets and, on a rebalance, waits until they are all released, so a crash or a
revoked partition replays unfinished batches (duplicates, never a loss).

An error in either stage is raised from the next ``put`` so the agent fails as it
would inline, instead of the pipe stalling silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from faust.types import EventT, StreamT

P = TypeVar("P")


class BatchPipe(Generic[P]):
    def __init__(self, stream: StreamT, prepare: Callable[[Sequence[EventT]], Awaitable[P]],
                 finish: Callable[[P], Awaitable[None]], depth: int = 2) -> None:
        self.stream, self.prepare, self.finish = stream, prepare, finish
        self._inbox: asyncio.Queue[Sequence[EventT]] = asyncio.Queue(maxsize=depth)
        self._ready: asyncio.Queue[tuple[Sequence[EventT], P]] = asyncio.Queue(maxsize=depth)
        self._tasks: list[asyncio.Task[None]] = []
        self._error: BaseException | None = None
        self._busy = 0  # batches taken from the inbox and not finished yet

    async def put(self, events: Sequence[EventT]) -> None:
        """Take ownership of a batch; returns once there is room for it."""
        self._raise_if_failed()
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._stage(self._prepare_loop)),
                           asyncio.create_task(self._stage(self._finish_loop))]
        for event in events:
            event.message.incref()  # released in _finish_loop, after outputs are durable
        await self._inbox.put(list(events))
        self._raise_if_failed()

    async def drain(self) -> None:
        """Wait until every batch handed over so far is finished (tests, shutdown)."""
        while not (self._inbox.empty() and self._ready.empty() and self._busy == 0):
            self._raise_if_failed()
            await asyncio.sleep(0.005)
        self._raise_if_failed()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _stage(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by the next put()
            self._error = exc

    async def _prepare_loop(self) -> None:
        while True:
            events = await self._inbox.get()
            self._busy += 1
            prepared = await self.prepare(events)
            await self._ready.put((events, prepared))

    async def _finish_loop(self) -> None:
        while True:
            events, prepared = await self._ready.get()
            await self.finish(prepared)
            for event in events:
                await self.stream.ack(event)
            self._busy -= 1

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"batch pipeline failed: {self._error!r}") from self._error

