"""BatchPipe: order, overlap, offsets released only after ``finish``, errors surface."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import Message

from streaming.worker.batch_pipe import BatchPipe


@dataclass
class Event:
    message: Message


@dataclass
class Stream:
    """Acks the way Faust's ``Stream.ack`` does: one reference released per call."""

    released: list[int] = field(default_factory=list)

    async def ack(self, event: Event) -> bool:
        last = event.message.decref() == 0
        if last:
            self.released.append(event.message.offset)
        return last


def batch(first: int, n: int) -> list[Event]:
    # refcount 1 is the take loop's own reference, as when Faust delivers the event.
    events = [Event(Message("t", 0, off, 0.0, 0, None, b"k", b"v", None)) for off in range(first, first + n)]
    for e in events:
        e.message.incref()
    return events


def take_loop_acks(events: Sequence[Event]) -> None:
    """What ``take_events`` does after the agent body returns: release its reference."""
    for e in events:
        e.message.decref()


def test_batches_finish_in_order_and_offsets_move_only_after_finish() -> None:
    log: list[str] = []
    stream = Stream()
    finish_gate = asyncio.Event()

    async def prepare(events: Sequence[Any]) -> int:
        log.append(f"prepare {events[0].message.offset}")
        return int(events[0].message.offset)

    async def finish(first: int) -> None:
        if first == 0:
            await finish_gate.wait()  # batch 0 is slow to publish
        log.append(f"finish {first}")

    async def scenario() -> None:
        pipe: BatchPipe[int] = BatchPipe(stream, prepare, finish)  # type: ignore[arg-type]
        b0, b1 = batch(0, 3), batch(3, 2)
        await pipe.put(b0)
        take_loop_acks(b0)
        await pipe.put(b1)
        take_loop_acks(b1)
        for _ in range(20):
            await asyncio.sleep(0)
        # Batch 1 was prepared while batch 0 was still publishing; nothing released yet.
        assert log == ["prepare 0", "prepare 3"]
        assert stream.released == []
        assert all(e.message.refcount == 1 for e in b0 + b1)
        finish_gate.set()
        await pipe.drain()
        await pipe.stop()

    asyncio.run(scenario())
    assert log == ["prepare 0", "prepare 3", "finish 0", "finish 3"]
    assert stream.released == [0, 1, 2, 3, 4]


def test_a_failing_stage_fails_the_next_put_and_keeps_offsets() -> None:
    stream = Stream()

    async def prepare(events: Sequence[Any]) -> int:
        return len(events)

    async def finish(n: int) -> None:
        raise ConnectionError("broker gone")

    async def scenario() -> None:
        pipe: BatchPipe[int] = BatchPipe(stream, prepare, finish)  # type: ignore[arg-type]
        await pipe.put(batch(0, 2))
        with pytest.raises(RuntimeError, match="broker gone"):
            for _ in range(100):
                await asyncio.sleep(0)
                await pipe.put(batch(10, 1))
        await pipe.stop()

    asyncio.run(scenario())
    assert stream.released == []


def test_back_pressure_bounds_the_batches_in_flight() -> None:
    stream = Stream()
    gate = asyncio.Event()

    async def prepare(events: Sequence[Any]) -> int:
        return 0

    async def finish(_: int) -> None:
        await gate.wait()

    async def scenario() -> int:
        pipe: BatchPipe[int] = BatchPipe(stream, prepare, finish, depth=1)  # type: ignore[arg-type]
        accepted = 0
        for i in range(10):
            try:
                await asyncio.wait_for(pipe.put(batch(i, 1)), timeout=0.05)
            except TimeoutError:
                break
            accepted += 1
        gate.set()
        await pipe.stop()
        return accepted

    # One in finish, one waiting between stages, one in prepare's hands, one in the inbox.
    assert asyncio.run(scenario()) <= 4
