"""Kafka plumbing for ``sentinel bench``: topics, fast pre-loading, paced producing, read-back.

Output topics are created by the bench (before the worker starts) with
``message.timestamp.type=LogAppendTime``: every output record then carries the
broker's append time, so "first to last forecast published" and tick-to-forecast
latency are measured on the broker's clock, not on the worker's. (The dev broker's
default, like Kafka's, is ``CreateTime``: the producer's clock at ``send``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streaming import topics
from streaming.kafka.admin import client_kwargs
from streaming.settings import Settings
from streaming.sources.producers import Pacer

APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}
KeyValue = tuple[bytes, bytes]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One output record as read back: broker timestamp, its type, and the raw value."""

    timestamp_ms: int
    timestamp_type: str
    value: bytes


async def create_topics(settings: Settings) -> None:
    """Every contract topic under the settings' prefix; outputs stamped with LogAppendTime."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        new = [NewTopic(settings.topic(t), settings.partitions, 1) for t in topics.INPUT_TOPICS]
        new += [NewTopic(settings.topic(t), settings.partitions, 1, topic_configs=dict(APPEND_TIME))
                for t in topics.OUTPUT_TOPICS]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
        await _wait_leaders(admin, [t.name for t in new])
    finally:
        await admin.close()


async def _wait_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Until every partition of ``names`` has a leader (producing earlier only logs retries)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = await admin.describe_topics(names)
        if len(described) == len(names) and all(
                t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described):
            return
        await asyncio.sleep(0.1)


async def group_members(settings: Settings, group: str) -> tuple[str, int]:
    """(state, member count) of a consumer group, e.g. ``("Stable", 2)``."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    for response in described:
        for entry in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            return str(entry[2]), len(entry[5])
    return "Unknown", 0


async def _producer(settings: Settings, linger_ms: int) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(**client_kwargs(settings), linger_ms=linger_ms, acks="all",
                                max_batch_size=512 * 1024, max_request_size=16 * 1024 * 1024)
    await producer.start()
    return producer


async def produce_fast(settings: Settings, topic: str, messages: Sequence[KeyValue]) -> float:
    """Send pre-built messages as fast as the broker takes them; returns the seconds taken."""
    producer = await _producer(settings, linger_ms=20)
    start = time.perf_counter()
    try:
        pending: list[Any] = []
        for key, value in messages:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - start


async def produce_paced(settings: Settings, topic: str, messages: Iterable[tuple[bytes, Any]],
                        rate: float) -> tuple[int, float]:
    """Send ``(key, build)`` messages at ``rate`` per second; ``build()`` runs just before
    ``send`` so a tick's ``ts`` is its send time. Returns (sent, seconds)."""
    producer = await _producer(settings, linger_ms=0)
    pacer, sent, pending = Pacer(rate), 0, []
    start = time.perf_counter()
    try:
        for key, build in messages:
            await pacer.wait(0)
            pending.append(await producer.send(topic, value=build(), key=key))
            sent += 1
        elapsed = time.perf_counter() - start
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent, elapsed


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts: set[int] | None = None
    for _ in range(50):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            break
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    return [TopicPartition(topic, p) for p in sorted(parts or ())]


async def end_offsets_total(settings: Settings, topic: str) -> int:
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def wait_for_count(settings: Settings, topic: str, expected: int, timeout: float,
                         stall_s: float = 30.0) -> int:
    """Poll the topic's end offsets (cheap: no records are fetched while the worker runs)
    until ``expected`` records exist, nothing new arrived for ``stall_s``, or ``timeout``."""
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        deadline = time.monotonic() + timeout
        count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = sum((await consumer.end_offsets(tps)).values())
            if now != count:
                count, last_change = now, time.monotonic()
            if count >= expected or time.monotonic() - last_change > stall_s:
                break
            await asyncio.sleep(0.2)
        return count
    finally:
        await consumer.stop()


async def read_all(settings: Settings, topic: str, keep_values: bool,
                   idle_timeout: float = 30.0, attempts: int = 2) -> list[OutputRecord]:
    """Every record of ``topic`` from the beginning to the end offsets seen at the start
    (or what arrived until nothing came for ``idle_timeout`` seconds).

    A read that stops short of the end offsets is made again with a fresh consumer: one
    recorded run read 0 of 170,500 records that were there (its fetches returned nothing
    for 30 s), and a figure of 0 ticks/s from the reader is not the worker's.
    """
    best: list[OutputRecord] = []
    for attempt in range(attempts):
        out, expected = await _read_once(settings, topic, keep_values, idle_timeout)
        if len(out) > len(best):
            best = out
        if len(best) >= expected:
            break
        logger.warning("read %d of %d records of %s (attempt %d of %d)",
                       len(out), expected, topic, attempt + 1, attempts)
    return best


async def _read_once(settings: Settings, topic: str, keep_values: bool,
                     idle_timeout: float) -> tuple[list[OutputRecord], int]:
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    out: list[OutputRecord] = []
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        last_progress = time.monotonic()
        while remaining and time.monotonic() - last_progress < idle_timeout:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            if batch:
                last_progress = time.monotonic()
            for tp, msgs in batch.items():
                out.extend(OutputRecord(m.timestamp, TIMESTAMP_TYPES.get(m.timestamp_type, "?"),
                                        m.value if keep_values else b"") for m in msgs)
                if msgs and msgs[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out, sum(ends.values()) if tps else 1
