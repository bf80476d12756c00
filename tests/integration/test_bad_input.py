"""Bad records of every kind between valid ones, on the real broker and a real worker.

The scenario of the tombstone report: 4 symbols x 150 valid ticks and 15 feedback messages
with bad records among them. Every valid record is processed, every bad one dead-lettered
with its reason, the worker stays up, lag returns to 0, and SIGTERM ends it within 10 s.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streaming import topics
from tests.integration.conftest import tick_messages
from tests.integration.kafka_io import WorkerProcess, consume, metric, scrape

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def send_records(bootstrap: str, topic: str, records: list[Record]) -> None:
    """In order, one partition for all (so "the records around it" are really around it)."""
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4_000_000)
        await producer.start()
        try:
            for key, value, headers in records:
                await (await producer.send(topic, value=value, key=key, headers=headers or None, partition=0))
        finally:
            await producer.stop()
    asyncio.run(run())


BAD_TICKS: list[tuple[Record, str]] = [
    ((b"AAA", None, []), "tombstone"),
    ((b"AAA", b"", []), "empty"),
    ((b"AAA", b"null", []), "not_an_object"),
    ((b"AAA", b'"a string"', []), "not_an_object"),
    ((b"AAA", b'{"symbol": "AAA", "ts": 1, "price": \xff1}', []), "invalid_utf8"),
    ((b"\xff\xfeAAA", orjson.dumps({"symbol": "AAA", "ts": 5, "price": 1.0}), []), "invalid_key"),
    ((None, orjson.dumps({"symbol": "AAA", "ts": 6, "price": 1.0}), []), "missing_key"),
    ((b"BBB", orjson.dumps({"symbol": "AAA", "ts": 7, "price": 1.0}), []), "key_mismatch"),
    ((b"AAA", b'{"symbol": "AAA", "ts": 8, "price": 1.0, "pad": "' + b"x" * 1_100_000 + b'"}', []),
     "too_large"),
    ((b"AAA", orjson.dumps({"symbol": "AAA", "ts": 9, "price": 1.0}), [("x-debug", b"1")]),
     "unexpected_header"),
]
BAD_FEEDBACK: list[tuple[Record, str]] = [
    ((b"f-t", None, []), "tombstone"),
    ((b"f-e", b"", []), "empty"),
    ((b"f-n", b"null", []), "not_an_object"),
    ((None, orjson.dumps({"id": "nokey", "ts": 1, "text": "fine"}), []), "missing_key"),
    ((b"f-h", orjson.dumps({"id": "hdr", "ts": 1, "text": "fine"}), [("x-debug", b"1")]),
     "unexpected_header"),
]


@pytest.mark.slow
def test_bad_records_are_dead_lettered_and_the_rest_processed(kafka_broker: object, tiny_models_dir: Path,
                                                               tmp_path: Path) -> None:
    worker = WorkerProcess(kafka_broker.bootstrap, tiny_models_dir, tmp_path / "state")  # type: ignore[attr-defined]
    worker.start()
    try:
        symbols = ["AAA", "BBB", "CCC", "DDD"]
        per_symbol = {s: tick_messages(s, 150) for s in symbols}
        ticks: list[Record] = []
        for i in range(150):  # bad records interleaved with the valid ones, all in one partition
            ticks += [(per_symbol[s][i][0], per_symbol[s][i][1], []) for s in symbols]
            if i % 14 == 7 and i // 14 < len(BAD_TICKS):
                ticks.append(BAD_TICKS[i // 14][0])
        valid_fb = [(f"ok{i}".encode(), orjson.dumps({"id": f"ok{i}", "ts": 1, "text": "great, love it"}), [])
                    for i in range(15)]
        feedback: list[Record] = []
        for i, rec in enumerate(valid_fb):
            feedback.append(rec)
            if i < len(BAD_FEEDBACK):
                feedback.append(BAD_FEEDBACK[i][0])
        send_records(worker.bootstrap, worker.topic(topics.TICKS), ticks)
        send_records(worker.bootstrap, worker.topic(topics.FEEDBACK), feedback)

        expected = {(s, 1_000 + i) for s in symbols for i in range(59, 150)}
        forecasts = consume(worker.bootstrap, worker.topic(topics.FORECASTS),
                            lambda r: expected <= {(x["symbol"], x["ts"]) for x in r}, timeout=90)
        assert {(x["symbol"], x["ts"]) for x in forecasts} == expected  # 364, none lost, none extra
        sentiment = consume(worker.bootstrap, worker.topic(topics.SENTIMENT), lambda r: len(r) >= 15)
        assert sorted(x["id"] for x in sentiment) == sorted(f"ok{i}" for i in range(15))
        n_bad = len(BAD_TICKS) + len(BAD_FEEDBACK)
        dead = consume(worker.bootstrap, worker.topic(topics.DEAD_LETTER), lambda r: len(r) >= n_bad)
        assert Counter(x["reason"] for x in dead) == Counter(r for _, r in BAD_TICKS + BAD_FEEDBACK)
        assert all(x["error"] for x in dead)

        deadline = time.monotonic() + 30  # lag = log end - committed offset, reported every 5 s
        samples = scrape(worker.metrics_url)
        while metric(samples, "sentinel_consumer_lag") > 0 and time.monotonic() < deadline:
            time.sleep(1)
            samples = scrape(worker.metrics_url)
        assert metric(samples, "sentinel_consumer_lag") == 0
        assert metric(samples, "sentinel_dead_letters_total") == n_bad
        assert metric(samples, "sentinel_processing_errors_total") == 0
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        t0 = time.monotonic()
        worker.stop(timeout=30)
        stopped_in = time.monotonic() - t0
    print(f"bad input: valid ticks={len(expected)} forecasts ok, dead letters={n_bad}, "
          f"SIGTERM -> exit in {stopped_in:.1f} s")
    assert stopped_in < 10
