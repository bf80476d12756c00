"""A flood of malformed messages mixed with valid ones: the worker stays up, every invalid
message is dead-lettered with its reason, every valid one is processed, metrics agree."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streaming import topics
from streaming.sources.producers import tick_payload
from tests.integration.kafka_io import WorkerProcess, consume, metric, produce, scrape
from tests.integration.reliability_support import labelled_stream, reference

pytestmark = pytest.mark.slow
TEN_MB_TEXT = b'{"id": "huge", "ts": 1, "text": "' + b"x" * 10_000_000 + b'"}'


def malformed_ticks(rng: random.Random, n: int) -> list[tuple[bytes, str]]:
    makers = [
        lambda i: (b'{"symbol": "A", "ts": ' + str(i).encode(), "invalid_json"),
        lambda i: (b'{"symbol": "A", "ts": 1, "price": NaN}', "invalid_json"),
        lambda i: (b'{"symbol": "A", "ts": 1, "price": Infinity}', "invalid_json"),
        lambda i: (orjson.dumps({"symbol": "A", "ts": i, "price": -rng.random()}), "invalid_value"),
        lambda i: (orjson.dumps({"symbol": "A", "ts": i, "price": 0}), "invalid_value"),
        lambda i: (orjson.dumps({"symbol": "a-b c", "ts": i, "price": 1.0}), "invalid_value"),
        lambda i: (orjson.dumps({"symbol": "A", "ts": str(i), "price": 1.0}), "invalid_type"),
        lambda i: (orjson.dumps({"symbol": "A", "ts": i}), "missing_field"),
        lambda i: (orjson.dumps({"symbol": "A", "ts": i, "price": 1.0, "side": "buy"}), "unknown_field"),
        lambda i: (b"\xc3\x28" + str(i).encode(), "invalid_utf8"),
        lambda i: (orjson.dumps([i]), "not_an_object"),
    ]
    return [makers[i % len(makers)](i) for i in range(n)]


def malformed_feedback(n: int) -> list[tuple[bytes, str]]:
    makers = [
        lambda i: (orjson.dumps({"id": f"e{i}", "ts": 1, "text": ""}), "invalid_value"),
        lambda i: (orjson.dumps({"id": f"e{i}", "ts": 1}), "missing_field"),
        lambda i: (orjson.dumps({"id": i, "ts": 1, "text": "x"}), "invalid_type"),
        lambda i: (b"not json at all " + str(i).encode(), "invalid_json"),
    ]
    out = [makers[i % len(makers)](i) for i in range(n - 2)]
    return out + [(TEN_MB_TEXT, "too_large"), (TEN_MB_TEXT.replace(b"huge", b"huge2"), "too_large")]


def test_flood_of_malformed_messages(kafka_broker: object, tiny_models_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(1)
    valid_ticks = labelled_stream(symbols=30, per_symbol=100, seed=4)
    ref = reference(valid_ticks, tiny_models_dir)
    bad_ticks, bad_fb = malformed_ticks(rng, 9_000), malformed_feedback(1_002)
    valid_fb = [orjson.dumps({"id": f"ok{i}", "ts": 1, "text": "great dress, love it"}) for i in range(500)]
    # Valid ticks stay in order per symbol; malformed ones are sprinkled between them.
    tick_stream = [(t.symbol.encode(), tick_payload(t)) for t in valid_ticks]
    for raw, _ in bad_ticks:
        tick_stream.insert(rng.randrange(len(tick_stream) + 1), (b"BAD", raw))
    fb_stream = [(b"ok", v) for v in valid_fb] + [(b"bad", raw) for raw, _ in bad_fb]
    rng.shuffle(fb_stream)
    worker = WorkerProcess(kafka_broker.bootstrap, tiny_models_dir, tmp_path / "state").start()  # type: ignore[attr-defined]
    try:
        produce(worker.bootstrap, worker.topic(topics.TICKS), tick_stream)
        produce(worker.bootstrap, worker.topic(topics.FEEDBACK), fb_stream)
        n_bad = len(bad_ticks) + len(bad_fb)
        dead = consume(worker.bootstrap, worker.topic(topics.DEAD_LETTER), lambda r: len(r) >= n_bad,
                       timeout=180)
        forecasts = consume(worker.bootstrap, worker.topic(topics.FORECASTS),
                            lambda r: len(r) >= len(ref.forecasts))
        sentiment = consume(worker.bootstrap, worker.topic(topics.SENTIMENT), lambda r: len(r) >= 500)
        samples = scrape(worker.metrics_url)
        alive = worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()
    expected = Counter(r for _, r in bad_ticks) + Counter(r for _, r in bad_fb)
    got = Counter(x["reason"] for x in dead)
    print(f"flood: malformed={n_bad} dead_lettered={len(dead)} valid_ticks={len(valid_ticks)} "
          f"forecasts={len(forecasts)} valid_feedback={len(valid_fb)} classified={len(sentiment)}")
    assert alive and got == expected
    assert all(len(x["payload"]) <= 65_536 and x["error"] for x in dead)
    assert {(x["symbol"], x["ts"]) for x in forecasts} == set(ref.forecasts)
    assert {x["id"] for x in sentiment} == {f"ok{i}" for i in range(500)}
    assert metric(samples, "sentinel_dead_letters_total") == n_bad
    assert metric(samples, "sentinel_messages_total", outcome="invalid") == n_bad
    assert metric(samples, "sentinel_messages_total", outcome="ok") == len(valid_ticks) + len(valid_fb)
