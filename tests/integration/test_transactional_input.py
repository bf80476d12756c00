"""A transactional producer writes prices.ticks: each commit leaves a marker at an offset
the worker never sees. Those holes must not stall the price agent (it waited 30 s per hole)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from streaming import topics
from tests.integration.conftest import tick_messages
from tests.integration.kafka_io import WorkerProcess, consume, metric, scrape


def produce_in_transactions(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], size: int) -> int:
    async def run() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"t-{uuid.uuid4().hex[:8]}",
                                    enable_idempotence=True)
        await producer.start()
        try:
            n = 0
            for i in range(0, len(records), size):
                async with producer.transaction():
                    for key, value in records[i:i + size]:
                        await producer.send(topic, value=value, key=key, partition=0)
                n += 1
            return n
        finally:
            await producer.stop()
    return asyncio.run(run())


def test_commit_markers_do_not_stall_the_agent(kafka_broker: object, tiny_models_dir: Path,
                                              tmp_path: Path) -> None:
    worker = WorkerProcess(kafka_broker.bootstrap, tiny_models_dir, tmp_path / "state")  # type: ignore[attr-defined]
    worker.start()
    try:
        records = tick_messages("TXA", 100) + tick_messages("TXB", 100)
        t0 = time.monotonic()
        transactions = produce_in_transactions(worker.bootstrap, worker.topic(topics.TICKS), records, 20)
        expected = {(s, 1_000 + i) for s in ("TXA", "TXB") for i in range(59, 100)}
        forecasts = consume(worker.bootstrap, worker.topic(topics.FORECASTS),
                            lambda r: expected <= {(x["symbol"], x["ts"]) for x in r}, timeout=60)
        took = time.monotonic() - t0
        samples = scrape(worker.metrics_url)
    finally:
        worker.stop()
    print(f"transactional input: {transactions} transactions (= {transactions} commit markers), "
          f"{len(expected)} forecasts in {took:.1f} s, "
          f"rewinds={metric(samples, 'sentinel_offset_rewinds_total'):.0f}")
    assert {(x["symbol"], x["ts"]) for x in forecasts} == expected
    assert took < 30  # one 30-s wait per marker before: 10 markers took minutes
    assert metric(samples, "sentinel_offset_rewinds_total") == 0
