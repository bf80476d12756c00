"""Batches from a Faust stream that start as soon as events are waiting.

Faust's ``take_events(max, within)`` always waits the full ``within`` unless ``max``
events arrive first, so at low rates every tick sat in the buffer for it (p50 51 ms at
500 ticks/s with ``within`` 20 ms plus the rest, docs/benchmarks.md). Here a batch is
handed over once events stop arriving: the batch closes when ``quiet`` (1 ms) passes with
no new event, or at ``max_`` events or ``max_bytes`` of message values, or after ``within``
seconds of lingering. The byte cap is for bundles: 1,000 bundles of 100 ticks made batches
of 100,000 ticks whose windows, forecasts and output records peaked at hundreds of MB. Closing on
the first idle turn of the event loop (``sleep(0)``) made batches of the fetcher's chunk
size under load (13 ticks on average in a soak at 1,000 ticks/s) and cost throughput.
Under load, what arrived while the previous batch was processed forms the next batch,
so batch sizes adapt to the rate without a fixed wait. With ``adaptive``, the quiet wait
is skipped while events arrive further apart than ``quiet`` on average, i.e. below
1,000 events/s for 1 ms: at 500 ticks/s a tick comes every 2 ms, so the wait almost never
caught a second one and only added its own millisecond to every tick's latency. The batch
then closes at the first turn of the event loop that brings no new event. The average is a
slow running mean of the gaps (``gap_weight`` 0.01, about the last hundred events), starting
at 0 (wait). The smaller batches this makes at 2,000 ticks/s (8 ticks instead of 17) made
the worker fall behind in 6 of 6 bench runs while Faust's hand-over cost four tasks per
record; with that trimmed (``delivery.py``) it kept up in every run and p50 at 500/s fell
from 12-13 to 9-10 ms (docs/benchmarks.md, "Adaptive quiet wait, again").

The buffering mirrors ``take_events``: acknowledgements are the caller's, events are
acknowledged after the batch's consumer returns, and nothing is added while it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from faust.types import EventT

QUIET_S = 0.001  # a batch closes once this long passes with no new event (or at max_ / within)
GAP_WEIGHT = 0.01  # weight of the newest gap in the running mean of the gaps between events


async def take_ready(stream: Any, max_: int, within: float, quiet: float = QUIET_S,
                     max_bytes: int | None = None, adaptive: bool = True,
                     gap_weight: float = GAP_WEIGHT) -> AsyncIterator[list[EventT]]:
    loop = asyncio.get_running_loop()
    events: list[EventT] = []
    gap = [0.0, -1.0]  # running mean of the gaps between events, last arrival (-1: none yet)
    size = [0]  # bytes of the values in ``events``
    cap = max_bytes or float("inf")
    ready, room = asyncio.Event(), asyncio.Event()
    room.set()

    def full() -> bool:
        return len(events) >= max_ or size[0] >= cap

    async def add(value: Any) -> Any:
        while not room.is_set() or full():
            room.clear()
            await room.wait()
        event = stream.current_event
        if event is None:
            raise RuntimeError("take_ready found no current event")
        events.append(event)
        size[0] += len(event.message.value or b"")
        now = loop.time()
        if gap[1] >= 0:
            gap[0] += gap_weight * (min(now - gap[1], 1.0) - gap[0])
        gap[1] = now
        ready.set()
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False
    stream.add_processor(add)
    stream._enable_passive(aiter(stream.channel))  # as take_events does
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(ready, timeout=1.0)
            deadline = loop.time() + within
            pause = 0.0 if adaptive and gap[0] > quiet else quiet
            while not full() and loop.time() < deadline:
                seen = len(events)
                await asyncio.sleep(pause)  # the drainer and the fetcher add what is arriving
                if len(events) == seen:
                    break
            ready.clear()
            if not events:
                continue
            room.clear()
            batch = list(events)
            try:
                yield batch
            finally:
                events.clear()
                size[0] = 0
                for event in batch:
                    await stream.ack(event)
                room.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add)
