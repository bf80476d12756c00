"""Symbol-state writes whose changelog records are acknowledged before input offsets move."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from faust.streams import _current_event
from faust.types import EventT, TableT

StateItem = tuple[EventT, str, bytes]  # (event that owns the key, key, SymbolState.to_bytes())
PartitionSend = Callable[[str, bytes, bytes, int], Awaitable[Any]]


class AckedChangelog:
    """Table writes whose changelog records are acknowledged before offsets move.

    Faust's own path (``table[key] = value``) queues the changelog record in its
    producer buffer; the pre-commit flush gives up after 0.1 s without progress and
    does not count the record its sender task has already taken off the queue, so
    input offsets can be committed whose state never reached the changelog. A
    ``kill -9`` then restores an older state, the ticks in between are never replayed,
    and each affected symbol's window silently misses them (the crash test caught 440
    lost forecasts that way, and single missing ticks in 2 of 14 runs). Here the records are sent
    to the owning event's partition (keys in JSON as Faust's ``json`` key serializer writes
    them, values as the table's ``raw`` serializer holds them, so Faust's recovery reads them
    back), awaited, and only then put in the store.
    """

    def __init__(self, table: TableT, send: PartitionSend) -> None:
        self.table, self.send = table, send
        self.topic = table.changelog_topic.get_topic_name()

    async def write(self, items: list[StateItem]) -> None:
        send, topic = self.send, self.topic
        futures = [await send(topic, orjson.dumps(key), value, event.message.partition)
                   for event, key, value in items]
        await asyncio.gather(*futures)
        store = self.table.data
        for _, key, value in items:
            store[key] = value


class OwnProducerSend:
    """Changelog records on a producer of their own.

    aiokafka keeps one produce request in flight per broker node and drains one batch per
    partition into each: a checkpoint of ~900 states (~55 batches of 16 KiB) on the shared
    producer takes ~14 round trips, and every forecast and alert sent meanwhile waits its
    turn between them. A second producer has its own connection and request. Ordering holds:
    a checkpoint's records are all acknowledged before the next checkpoint starts
    (``Checkpoints.write`` holds a lock), and one request in flight cannot reorder a partition.
    Started on first use, inside the running loop; after :meth:`close` (shutdown, after the
    final hand-over checkpoint) a late write goes through ``fallback``, the shared producer.
    """

    def __init__(self, factory: Callable[[], Any], fallback: PartitionSend) -> None:
        self._factory, self._fallback = factory, fallback
        self._producer: Any = None
        self._closed = False

    async def __call__(self, topic: str, key: bytes, value: bytes, partition: int) -> Any:
        if self._closed:
            return await self._fallback(topic, key, value, partition)
        if self._producer is None:
            producer = self._factory()
            await producer.start()
            self._producer = producer
        return await self._producer.send(topic, value, key=key, partition=partition)

    async def close(self) -> None:
        """Flush and stop; later writes use the fallback."""
        self._closed = True
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


class FaustChangelog:
    """Faust's own table writes: what exactly-once needs (the records join the transaction)."""

    def __init__(self, table: TableT) -> None:
        self.table = table

    async def write(self, items: list[StateItem]) -> None:
        for event, key, value in items:
            write_table(self.table, event, key, value)


def write_table(table: TableT, event: EventT, key: str, value: Any) -> None:
    """Set a table key as if while processing ``event``.

    Faust sends the changelog entry to the partition of the *current* event; in a
    batch from ``take_events`` that is the last event, which may belong to another
    partition. Pointing the context at the event that owns the key keeps the
    changelog co-partitioned with the source topic.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)
