"""Less of Faust's per-record machinery: a cheaper hand-over to the streams, no Monitor sensor.

faust-streaming (0.15.3) hands every record to the conductor with
``wait_first(callback(message), suspend_flow.wait())``: four tasks and an
``asyncio.wait`` per record, so that a rebalance (``stop_flow``) can interrupt a callback
blocked on a full stream buffer. In the single-tick profile that was a fifth of the event
loop's time (docs/benchmarks.md). While the flow is active the callback is awaited
directly; when the flow is stopped the stock path runs, unchanged. A directly awaited
callback that blocks on a full buffer is still cancelled with the fetcher on a rebalance
or a stop, and the offset guard (``offset_guard.py``) still sees any record Faust drops.

Faust's Monitor sensor keeps per-record statistics for Faust's web views, which the worker
turns off; our Prometheus metrics replace them. It is called four times per record.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from mode.services import WaitResults

_EVENT_WAIT = asyncio.Event.wait.__code__


class DirectDeliveryConsumer(AIOKafkaConsumer):
    """``wait_first`` short-cuts exactly the drain loop's per-record call while the flow is active."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is None and len(coros) == 2 and self.flow_active and self._is_flow_wait(coros[1]):
            callback, flow_wait = coros
            flow_wait.close()  # never started: closing it is all it needs
            return WaitResults([callback], [await callback], False)
        return await super().wait_first(*coros, timeout=timeout)

    def _is_flow_wait(self, coro: Any) -> bool:
        return (inspect.iscoroutine(coro) and coro.cr_code is _EVENT_WAIT
                and coro.cr_frame is not None and coro.cr_frame.f_locals.get("self") is self.suspend_flow)


def use_direct_delivery(app: faust.App) -> None:
    """Before the consumer exists: the app's transport builds ours instead of the stock one."""
    app.transport.Consumer = DirectDeliveryConsumer  # type: ignore[misc]  # this app only, not the class


def without_monitor(app: faust.App) -> None:
    """Once the app has started (it adds its Monitor then): stop feeding it every record."""
    sensors = app.sensors
    if app.monitor in set(sensors):
        sensors.remove(app.monitor)
