"""Batches completed in the order they were sent, only once their outputs are acknowledged."""

from __future__ import annotations

import asyncio

import pytest

from streaming.worker.in_flight import InFlight


def futures(n: int) -> list[asyncio.Future[int]]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(n)]


def test_batches_complete_in_order_even_when_later_acks_come_first() -> None:
    done: list[str] = []

    async def go() -> None:
        flight = InFlight(limit=4)
        first, second = futures(2), futures(1)

        async def mark(name: str) -> None:
            done.append(name)

        await flight.add(first, lambda: mark("first"))
        await flight.add(second, lambda: mark("second"))
        second[0].set_result(1)  # the later batch is acknowledged first
        await asyncio.sleep(0.01)
        assert done == [] and flight.waiting == 2
        first[0].set_result(1)
        await asyncio.sleep(0.01)
        assert done == [] and flight.waiting == 2  # one of first's two acks is still missing
        first[1].set_result(1)
        await asyncio.wait_for(flight.drain(), 1.0)
        assert done == ["first", "second"] and flight.waiting == 0
        await flight.stop()

    asyncio.run(go())


def test_add_waits_when_limit_batches_are_waiting() -> None:
    async def go() -> None:
        flight = InFlight(limit=1)
        blocked = futures(3)

        async def nothing() -> None:
            return None

        await flight.add([blocked[0]], nothing)  # taken by the completer at once
        await flight.add([blocked[1]], nothing)  # fills the queue
        third = asyncio.create_task(flight.add([blocked[2]], nothing))
        await asyncio.sleep(0.01)
        assert not third.done()  # back-pressure: the agent waits for room
        blocked[0].set_result(0)
        await asyncio.wait_for(third, 1.0)
        for f in blocked[1:]:
            f.set_result(0)
        await asyncio.wait_for(flight.drain(), 1.0)
        await flight.stop()

    asyncio.run(go())


def test_a_failed_ack_stops_later_completions_and_is_reported() -> None:
    reported: list[BaseException] = []
    done: list[str] = []

    async def go() -> None:
        flight = InFlight(limit=4, on_error=reported.append)
        first, second = futures(1), futures(1)

        async def mark(name: str) -> None:
            done.append(name)

        await flight.add(first, lambda: mark("first"))
        await flight.add(second, lambda: mark("second"))
        second[0].set_result(1)
        first[0].set_exception(ConnectionError("broker gone"))
        with pytest.raises(RuntimeError, match="not acknowledged"):
            await asyncio.wait_for(flight.drain(), 1.0)
        with pytest.raises(RuntimeError, match="broker gone"):
            await flight.add([], lambda: mark("third"))
        await flight.stop()

    asyncio.run(go())
    assert done == [] and len(reported) == 1 and isinstance(reported[0], ConnectionError)


def test_limit_zero_completes_inside_add() -> None:
    done: list[int] = []

    async def go() -> None:
        flight = InFlight(limit=0)
        acked = futures(1)
        acked[0].set_result(0)

        async def mark() -> None:
            done.append(1)

        await flight.add(acked, mark)
        assert done == [1]
        failing = futures(1)
        failing[0].set_exception(ConnectionError("x"))
        with pytest.raises(ConnectionError):
            await flight.add(failing, mark)
        assert done == [1]

    asyncio.run(go())
