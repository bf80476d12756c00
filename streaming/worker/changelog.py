"""Symbol-state writes whose changelog records are acknowledged before input offsets move."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from faust.streams import _current_event
from faust.types import EventT, TableT

from streaming.kafka.batches import RecordsSend

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

    With ``send_records`` a checkpoint's records are appended to record batches, one
    sequence per partition, instead of one ``send`` each (``streaming.kafka.batches``).
    """

    def __init__(self, table: TableT, send: PartitionSend, send_records: RecordsSend | None = None) -> None:
        self.table, self.send, self.send_records = table, send, send_records
        self.topic = table.changelog_topic.get_topic_name()

    async def write(self, items: list[StateItem]) -> None:
        send, topic = self.send, self.topic
        if self.send_records is None:
            futures = [await send(topic, orjson.dumps(key), value, event.message.partition)
                       for event, key, value in items]
        else:
            parts: dict[int, list[tuple[bytes, bytes]]] = {}
            for event, key, value in items:
                parts.setdefault(event.message.partition, []).append((orjson.dumps(key), value))
            # Partitions side by side: the producer holds one queued batch per partition.
            sent = await asyncio.gather(*(self.send_records(topic, p, recs) for p, recs in parts.items()))
            futures = [f for batch in sent for f in batch]
        await asyncio.gather(*futures)
        store = self.table.data
        for _, key, value in items:
            store[key] = value


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
