"""``take_ready``: batches close at the event cap, at the byte cap, and when input pauses."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from streaming.worker.take import take_ready
from tests.unit.streaming.worker.fakes import make_event


class FakeStream:
    """The part of a Faust stream ``take_ready`` uses: processors run per value, acks recorded."""

    def __init__(self) -> None:
        self.enable_acks, self.should_stop = True, False
        self.current_event: Any = None
        self._processors: list[Any] = []
        self.acked: list[Any] = []
        self.channel = self

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> Any:
        raise StopAsyncIteration

    def add_processor(self, fn: Any) -> None:
        self._processors.append(fn)

    def _enable_passive(self, _: Any) -> None:
        pass

    async def wait_for_stopped(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def ack(self, event: Any) -> None:
        self.acked.append(event)

    async def deliver(self, events: list[Any]) -> None:
        """What Faust's stream does per message: set the current event, run the processors."""
        for event in events:
            self.current_event = event
            for fn in list(self._processors):
                await fn(event.message.value)


async def _batches(events: list[Any], max_: int, max_bytes: int | None) -> tuple[list[int], FakeStream]:
    stream = FakeStream()
    sizes: list[int] = []

    async def consume() -> None:
        async for batch in take_ready(stream, max_, within=0.5, max_bytes=max_bytes):
            sizes.append(len(batch))
            if sum(sizes) == len(events):
                stream.should_stop = True
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the processor is registered
    await asyncio.wait_for(asyncio.gather(task, stream.deliver(events)), 5)
    return sizes, stream


def _events(n: int, size: int) -> list[Any]:
    return [make_event(b"x" * size, topic_name="t", offset=i) for i in range(n)]


def test_a_batch_closes_at_the_byte_cap() -> None:
    events = _events(10, 300)
    sizes, stream = asyncio.run(_batches(events, max_=100, max_bytes=1000))
    assert sizes == [4, 4, 2]  # 4 x 300 bytes reach 1,000: the fifth waits for the next batch
    assert stream.acked == events  # every event acknowledged, in order, after its batch


def test_small_values_close_at_the_event_cap() -> None:
    sizes, _ = asyncio.run(_batches(_events(10, 10), max_=3, max_bytes=1000))
    assert sizes == [3, 3, 3, 1]


def test_no_byte_cap() -> None:
    sizes, _ = asyncio.run(_batches(_events(10, 300), max_=100, max_bytes=None))
    assert sizes == [10]


async def _close_delays(adaptive: bool, quiet: float, spacing: float, n: int,
                        gap_weight: float = 0.5) -> list[float]:
    """Seconds from each (spaced) event's delivery to its batch being handed over."""
    stream = FakeStream()
    loop = asyncio.get_running_loop()
    delivered: list[float] = []
    delays: list[float] = []

    async def consume() -> None:
        async for batch in take_ready(stream, 100, within=0.5, quiet=quiet, adaptive=adaptive,
                                    gap_weight=gap_weight):
            delays.append(loop.time() - delivered[-1])
            if len(delays) == n or len(batch) > 1:
                stream.should_stop = True
                return

    async def deliver() -> None:
        for event in _events(n, 10):
            delivered.append(loop.time())
            await stream.deliver([event])
            await asyncio.sleep(spacing)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(task, deliver()), 10)
    return delays


def test_sparse_events_do_not_wait_the_quiet_time() -> None:
    # Events 0.15 s apart and a quiet time of 0.05 s: one event per batch either way, but
    # only the fixed wait holds each one for the quiet time. A fast mean (weight 0.5) so that
    # a few events move it: it starts at 0 (wait), then 0.075 s > 0.05 s after one gap.
    fixed = asyncio.run(_close_delays(False, quiet=0.05, spacing=0.15, n=4))
    adaptive = asyncio.run(_close_delays(True, quiet=0.05, spacing=0.15, n=4))
    assert len(fixed) == len(adaptive) == 4  # one event per batch in both
    assert min(fixed) >= 0.045
    assert adaptive[0] >= 0.045  # no gap seen yet: the first batch still waits
    assert max(adaptive[2:]) < 0.025


def test_dense_events_keep_the_quiet_wait() -> None:
    # Events 0.01 s apart and a quiet time of 0.05 s: the quiet wait gathers them, adaptive or not.
    delays = asyncio.run(_close_delays(True, quiet=0.05, spacing=0.01, n=6))
    assert len(delays) < 6  # a batch held more than one event


def test_a_burst_after_a_pause_does_not_switch_the_wait_off() -> None:
    # The slow default mean: a 0.2 s pause among 0.01-s gaps moves it by 0.002 s, far below
    # the 0.05 s quiet time, so the events after the pause are still gathered.
    async def run() -> list[int]:
        stream = FakeStream()
        sizes: list[int] = []

        async def consume() -> None:
            async for batch in take_ready(stream, 100, within=0.5, quiet=0.05):
                sizes.append(len(batch))
                if sum(sizes) == 8:
                    stream.should_stop = True
                    return

        async def deliver() -> None:
            events = _events(8, 10)
            for i, event in enumerate(events):
                await stream.deliver([event])
                await asyncio.sleep(0.2 if i == 3 else 0.01)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(task, deliver()), 10)
        return sizes

    assert asyncio.run(run()) == [4, 4]
