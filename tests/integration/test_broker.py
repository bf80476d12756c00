"""The dev broker really starts, keeps data across a restart, and stops.

Deliberately no skip: if Java/Maven/Kafka are unavailable this test must fail.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streaming.kafka.broker import BrokerConfig, broker_status, start_broker, stop_broker
from streaming.tools.processes import free_ports

TOPIC = "broker-smoke"
GROUP = "broker-smoke-group"


async def _produce(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, b"hello", key=b"k")
    finally:
        await producer.stop()


async def _consume_one(bootstrap: str, group: str | None) -> tuple[bytes | None, int | None]:
    """Read the first record from the beginning; return it and the group's committed offset."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), 60)
        committed = None
        if group is not None:
            await consumer.commit()
            committed = await consumer.committed(TopicPartition(TOPIC, msg.partition))
        return msg.value, committed
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, partitions: int = 4) -> set[int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    await consumer.start()
    try:
        return {await consumer.committed(TopicPartition(TOPIC, p)) for p in range(partitions)}
    finally:
        await consumer.stop()


@pytest.mark.integration
def test_broker_start_produce_consume_restart(tmp_path: Path) -> None:
    port, cport = free_ports(2)
    cfg = BrokerConfig(data_dir=tmp_path / "kafka", port=port, controller_port=cport)
    t0 = time.monotonic()
    handle = start_broker(cfg)
    try:
        print(f"broker ready in {time.monotonic() - t0:.1f}s at {handle.bootstrap}")
        assert handle.bootstrap == f"127.0.0.1:{port}"
        assert broker_status(cfg.data_dir) == handle.bootstrap
        asyncio.run(_produce(handle.bootstrap))
        assert asyncio.run(_consume_one(handle.bootstrap, GROUP)) == (b"hello", 1)

        assert handle.stop() is True
        assert not handle.is_alive()
        assert broker_status(cfg.data_dir) is None

        t0 = time.monotonic()
        handle = start_broker(cfg)  # same data dir: must not reformat
        print(f"broker restarted in {time.monotonic() - t0:.1f}s")
        assert asyncio.run(_consume_one(handle.bootstrap, None))[0] == b"hello"
        # After a restart the group coordinator reloads __consumer_offsets in the
        # background; an offset fetch during that window can answer "no offset".
        # Durability means the commit shows up once loading is done, so poll.
        deadline = time.monotonic() + 60
        committed = asyncio.run(_committed(handle.bootstrap))
        while 1 not in committed and time.monotonic() < deadline:
            time.sleep(1)
            committed = asyncio.run(_committed(handle.bootstrap))
        assert 1 in committed
    finally:
        handle.stop()
    assert stop_broker(cfg.data_dir) is False
    assert not handle.is_alive()
