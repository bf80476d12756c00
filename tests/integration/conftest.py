"""Integration fixtures: a real worker process on the session's real broker."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streaming import topics
from tests.integration.kafka_io import WorkerProcess, consume, produce


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def worker(kafka_broker: object, tiny_models_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(kafka_broker.bootstrap, tiny_models_dir,  # type: ignore[attr-defined]
                         tmp_path_factory.mktemp("worker") / "state").start()
    yield proc
    proc.stop()


def tick_messages(symbol: str, n: int, start_ts: int = 1_000, spike_at: int | None = None,
                  sigma: float = 0.001) -> list[tuple[bytes, bytes]]:
    """A deterministic random walk; an optional +25σ spike at index ``spike_at``."""
    import random

    rng = random.Random(symbol)
    price, out = 100.0, []
    for i in range(n):
        price *= math.exp(rng.gauss(0, sigma))
        shown = price * math.exp(25 * sigma) if i == spike_at else price
        out.append((symbol.encode(), orjson.dumps({"symbol": symbol, "ts": start_ts + i, "price": shown})))
    return out


@pytest.fixture(scope="module")
def worker_metrics_url(worker: WorkerProcess) -> str:
    """A worker that has processed ticks (with a spike), feedback and invalid input."""
    produce(worker.bootstrap, worker.topic(topics.TICKS), tick_messages("MTRX", 200, spike_at=150))
    produce(worker.bootstrap, worker.topic(topics.FEEDBACK), [
        (b"m1", orjson.dumps({"id": "m1", "ts": 1, "text": "terrible and broken, refund now"})),
        (b"m2", orjson.dumps({"id": "m2", "ts": 1, "text": "love it, great"}))])
    produce(worker.bootstrap, worker.topic(topics.TICKS), [(b"MTRX", b"{oops")])
    consume(worker.bootstrap, worker.topic(topics.DEAD_LETTER), lambda r: len(r) >= 1)
    consume(worker.bootstrap, worker.topic(topics.FORECASTS), lambda r: len(r) >= 141)
    return worker.metrics_url
