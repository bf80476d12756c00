"""Small real-Kafka helpers for integration tests: produce, consume, scrape, run a worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streaming import topics
from streaming.tools.processes import free_port, stop_process
from streaming.tools.scrape import scrape
from streaming.tools.scrape import value as metric

__all__ = ["metric", "scrape"]

REPO = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    async def run() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                    max_request_size=16_000_000)
        await producer.start()
        try:
            futs = [await producer.send(topic, value=v, key=k) for k, v in messages]
            await asyncio.gather(*futs)
            return len(futs)
        finally:
            await producer.stop()
    return asyncio.run(run())


def consume(bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool],
            timeout: float = 60.0) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning until ``until(records)`` holds or time runs out."""
    async def run() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    group_id=f"test-{uuid.uuid4().hex}", isolation_level="read_committed")
        await consumer.start()
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not until(records):
                batch = await consumer.getmany(timeout_ms=250)
                for msgs in batch.values():
                    records.extend(orjson.loads(m.value) for m in msgs)
        finally:
            await consumer.stop()
        return records
    return asyncio.run(run())


@dataclass
class WorkerProcess:
    bootstrap: str
    models_dir: Path
    state_dir: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    app_id: str = field(default_factory=lambda: f"sentinel-test-{uuid.uuid4().hex[:8]}")
    metrics_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def start(self, wait: float = 90.0) -> WorkerProcess:
        env = {**os.environ, "SENTINEL_KAFKA_BOOTSTRAP": self.bootstrap,
               "SENTINEL_MODELS_DIR": str(self.models_dir), "SENTINEL_TOPIC_PREFIX": self.prefix,
               "SENTINEL_APP_ID": self.app_id, "SENTINEL_METRICS_PORT": str(self.metrics_port),
               "SENTINEL_DATA_DIR": str(self.state_dir), "PYTHONPATH": str(REPO), **self.env}
        log = (self.state_dir.parent / f"{self.app_id}.log").open("ab")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "streaming.cli", "worker"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self._wait_metrics(wait)
        return self

    def _wait_metrics(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "worker exited: see its log"
            try:
                if metric(scrape(self.metrics_url), "sentinel_model_info") >= 2:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError("worker metrics endpoint did not come up")

    def log_text(self) -> str:
        return (self.state_dir.parent / f"{self.app_id}.log").read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


ALL_OUTPUTS = (topics.FORECASTS, topics.ANOMALIES, topics.SENTIMENT, topics.ESCALATIONS,
               topics.DEAD_LETTER)


def read_all(bootstrap: str, topic: str, idle: float = 3.0) -> list[Any]:
    """Every record of ``topic`` (raw aiokafka records), read until ``idle`` s bring nothing new."""
    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    group_id=None, enable_auto_commit=False)
        await consumer.start()
        out: list[Any] = []
        last = time.monotonic()
        try:
            while time.monotonic() - last < idle:
                batch = await consumer.getmany(timeout_ms=250)
                for msgs in batch.values():
                    out.extend(msgs)
                    last = time.monotonic()
        finally:
            await consumer.stop()
        return out
    return asyncio.run(run())
