"""Records appended to aiokafka record batches, one ``send_batch`` per full batch.

``AIOKafkaProducer.send`` costs a metadata wait, a partitioner call, a future and an
accumulator hand-off per record; a checkpoint of ~900 symbol states paid that ~900 times on
the event loop, every interval (docs/benchmarks.md). ``create_batch``/``send_batch`` fill
the same wire batches (the producer's ``max_batch_size``) with one call per batch; the
accumulator still queues one batch per partition, so each partition's batches go in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Records = list[tuple[bytes, bytes]]
RecordsSend = Callable[[str, int, Records], Awaitable[list[Awaitable[Any]]]]


def records_sender(producer: Callable[[], Any]) -> RecordsSend:
    """``send_records(topic, partition, [(key, value)])`` on the aiokafka producer ``producer()`` returns."""

    async def send_records(topic: str, partition: int, records: Records) -> list[Awaitable[Any]]:
        kafka = producer()
        futures: list[Awaitable[Any]] = []
        batch = kafka.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await kafka.send_batch(batch, topic, partition=partition))
                batch = kafka.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any one record
        if batch.record_count():
            futures.append(await kafka.send_batch(batch, topic, partition=partition))
        return futures

    return send_records
