"""``DirectDeliveryConsumer``: the drain loop's per-record call without tasks, the rest stock."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest

from streaming.worker.delivery import DirectDeliveryConsumer, use_direct_delivery, without_monitor


def _consumer() -> Any:
    """A real Faust consumer of an app that never connects (nothing here starts it)."""
    app = faust.App("delivery-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
    use_direct_delivery(app)
    return app.consumer


def test_the_app_builds_our_consumer() -> None:
    async def main() -> None:
        assert isinstance(_consumer(), DirectDeliveryConsumer)

    asyncio.run(main())


def test_an_active_flow_awaits_the_callback_in_place() -> None:
    async def main() -> None:
        consumer = _consumer()
        ran: list[str] = []

        async def callback() -> str:
            ran.append("callback")
            # In place: the drain loop's own task, not one made for this record.
            assert asyncio.current_task() is outer
            return "delivered"

        async def drain_one() -> Any:
            cb = callback()
            return await consumer.wait_first(cb, consumer.suspend_flow.wait())

        outer = asyncio.ensure_future(drain_one())
        done, results, stopped = await outer
        assert ran == ["callback"]
        assert results == ["delivered"] and not stopped and len(done) == 1

    asyncio.run(main())


def test_a_callback_error_reaches_the_drain_loop() -> None:
    async def main() -> None:
        consumer = _consumer()

        async def callback() -> None:
            raise ValueError("decode failed")

        with pytest.raises(ValueError, match="decode failed"):
            await consumer.wait_first(callback(), consumer.suspend_flow.wait())

    asyncio.run(main())


def test_a_stopped_flow_takes_the_stock_path_and_is_not_blocked() -> None:
    async def main() -> None:
        consumer = _consumer()
        consumer.stop_flow()  # a rebalance: suspend_flow is set
        blocked = asyncio.Event()

        async def callback() -> None:
            await blocked.wait()  # a full stream buffer, say

        flow_wait = consumer.suspend_flow.wait()
        result = await asyncio.wait_for(consumer.wait_first(callback(), flow_wait), 2)
        assert result.done == [flow_wait]  # the suspension won, as in stock Faust

    asyncio.run(main())


def test_other_waits_are_stock() -> None:
    async def main() -> None:
        consumer = _consumer()
        other = asyncio.Event()
        other.set()

        async def never() -> None:
            await asyncio.sleep(10)

        # Not the drain loop's shape (another event, a timeout): Faust's wait_first.
        result = await consumer.wait_first(never(), other.wait())
        assert result.results == [True]
        result = await consumer.wait_first(never(), consumer.suspend_flow.wait(), timeout=0.01)
        assert result.done == [] and result.stopped

    asyncio.run(main())


def test_without_monitor_stops_feeding_faust_its_per_record_statistics() -> None:
    async def main() -> None:
        app = faust.App("monitor-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
        app.sensors.add(app.monitor)  # what the app does when it starts
        without_monitor(app)
        assert app.monitor not in set(app.sensors)
        without_monitor(app)  # once per agent start: the second call finds nothing to remove

    asyncio.run(main())
