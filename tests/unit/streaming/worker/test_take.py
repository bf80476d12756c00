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
