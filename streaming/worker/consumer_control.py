"""Committed offsets and per-partition seeks on Faust's consumer, done safely.

faust-streaming runs the aiokafka consumer in its own thread with its own event loop.
``Consumer.seek`` calls aiokafka's ``seek`` from the caller's thread, which races with
the fetcher: the rebalance test crashed the worker once that way (``KeyError`` in
``Fetcher.fetched_records``). Both calls here go through the consumer thread's queue
(``call_thread``), the way Faust itself commits and seeks to committed offsets. These are
Faust internals (``Consumer._thread``, ``Consumer._read_offset``); this module is the
only place that touches them, and the fault tests exercise it against a real broker.
"""

from __future__ import annotations

from typing import Any

from faust.types import TP


async def committed_offset(consumer: Any, tp: TP, seen: dict[TP, int] | None = None) -> int:
    """The group's committed offset for ``tp`` from the broker, else the log start.

    aiokafka answers "no commit" both for a partition never committed and, right after a
    broker restart, for one that was (the soak caught the worker's lag gauge reading one
    partition's whole log, 275,347, while the real lag was ~12,000). With ``seen`` (the last
    offset this caller got per partition) such an answer returns that offset instead; only a
    partition never seen committed falls back to the log start.
    """
    thread = consumer._thread
    aiokafka_consumer = thread._ensure_consumer()
    committed = await thread.call_thread(aiokafka_consumer.committed, tp)
    if committed is not None and committed >= 0:
        if seen is not None:
            seen[tp] = int(committed)
        return int(committed)
    if seen is not None and tp in seen:
        return seen[tp]
    return int((await consumer.earliest_offsets(tp))[tp])


async def seek(consumer: Any, tp: TP, offset: int) -> None:
    """Move ``tp``'s fetch position to ``offset`` in the consumer thread, then let Faust's
    drain loop accept offsets from there again (it drops records below its read offset)."""
    thread = consumer._thread
    await thread.call_thread(thread.seek, tp, offset)
    consumer._read_offset[tp] = offset if offset else None
