"""FeedbackHandler with the tiny real sentiment model: sentiment, escalations, dead letters."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from streaming import topics
from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry
from streaming.worker.dead_letters import DeadLetters
from streaming.worker.feedback import FeedbackHandler
from tests.unit.streaming.worker.fakes import (
    FakeEvent,
    RecordingSend,
    load_registry,
    make_event,
    new_metrics,
    sample,
    topic,
)

FEEDBACK, SENTIMENT = topic(topics.FEEDBACK), topic(topics.SENTIMENT)
ESCALATIONS, DLQ = topic(topics.ESCALATIONS), topic(topics.DEAD_LETTER)
MAX_BYTES = 1024


@pytest.fixture(scope="module")
def registry(tiny_models_dir: Path) -> ModelRegistry:
    return load_registry(tiny_models_dir)


@pytest.fixture(scope="module")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


@dataclass
class Rig:
    handler: FeedbackHandler
    send: RecordingSend
    metrics: Metrics
    offset: int = 0

    def event(self, raw: bytes, partition: int = 0) -> FakeEvent:
        event = make_event(raw, topic_name=FEEDBACK, partition=partition, offset=self.offset, key=b"k")
        self.offset += 1
        return event

    def feedback(self, id_: str, text: str, **extra: Any) -> FakeEvent:
        ts = int(time.time() * 1000) - 50
        return self.event(orjson.dumps({"id": id_, "ts": ts, "text": text, **extra}))

    def records(self, name: str) -> list[dict[str, Any]]:
        return [s.json for s in self.send.to(name)]


def rig(registry: ModelRegistry, executor: ThreadPoolExecutor, auto_ack: bool = True) -> Rig:
    send, metrics = RecordingSend(auto_ack), new_metrics()
    handler = FeedbackHandler(send, topic, registry, metrics, DeadLetters(send, DLQ, metrics), MAX_BYTES,
                              executor)
    return Rig(handler, send, metrics)


def handle(r: Rig, events: Sequence[FakeEvent]) -> None:
    asyncio.run(r.handler.handle(events))


def test_negative_feedback_gets_sentiment_and_an_escalation(registry: ModelRegistry,
                                                            executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    text = "Terrible, it arrived broken.   I want a refund!"
    handle(r, [r.feedback("n1", text, channel="email", customer_id="c9")])

    (sentiment,) = r.send.to(SENTIMENT)
    (escalation,) = r.send.to(ESCALATIONS)
    assert sentiment.key == escalation.key == b"n1"  # keyed by the feedback id, not the input key
    s, e = sentiment.json, escalation.json
    assert s["id"] == "n1" and s["label"] == "negative" and s["p_negative"] >= 0.9
    assert s["model"] == registry.classifier.ref
    assert set(s) == {"id", "ts", "label", "p_negative", "model"}
    assert e["alert_id"] == "fb:n1" and e["priority"] == "P1" and e["p_negative"] == s["p_negative"]
    assert "refund" in e["reason"] and "broken" in e["reason"]
    assert e["text_excerpt"] == "Terrible, it arrived broken. I want a refund!"  # whitespace folded
    assert (e["channel"], e["customer_id"], e["ts"], e["model"]) == ("email", "c9", s["ts"], s["model"])

    m = r.metrics
    assert sample(m, "sentinel_sentiment_total", label="negative") == 1
    assert sample(m, "sentinel_escalations_total", priority="P1") == 1
    assert sample(m, "sentinel_messages_total", topic=FEEDBACK, outcome="ok") == 1
    assert sample(m, "sentinel_end_to_end_latency_seconds_count", topic=FEEDBACK) == 1
    assert sample(m, "sentinel_inference_batch_size_sum", model=registry.classifier.manifest.name) == 1


def test_positive_feedback_gets_sentiment_only(registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    handle(r, [r.feedback("p1", "I love it, great fit and beautiful colour"), r.feedback("p2", "it is the")])
    assert [(s["id"], s["label"]) for s in r.records(SENTIMENT)] == [("p1", "positive"), ("p2", "positive")]
    assert all(s["p_negative"] < 0.5 for s in r.records(SENTIMENT))
    assert r.send.to(ESCALATIONS) == []
    assert sample(r.metrics, "sentinel_sentiment_total", label="positive") == 2
    assert sample(r.metrics, "sentinel_sentiment_total", label="negative") == 0
    assert r.metrics.registry.get_sample_value("sentinel_escalations_total", {"priority": "P3"}) is None


@pytest.mark.parametrize(("text", "priority"), [
    ("terrible, awful", "P2"),  # very confident, no urgent term
    ("I will cancel", "P2"),  # an urgent term, not very confident
    ("it was bad", "P3"),  # neither
])
def test_escalation_priority(text: str, priority: str, registry: ModelRegistry,
                             executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    handle(r, [r.feedback("x", text)])
    (escalation,) = r.records(ESCALATIONS)
    assert escalation["priority"] == priority
    p = escalation["p_negative"]
    assert (p >= 0.9) == (text == "terrible, awful")
    assert p == pytest.approx(1 / (1 + math.exp(-(3.0 * sum(w in text for w in (
        "terrible", "awful", "cancel", "bad")) - 1.0))), rel=1e-5)
    assert sample(r.metrics, "sentinel_escalations_total", priority=priority) == 1


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{nope", "invalid_json"),
    (orjson.dumps({"id": "a", "ts": 1}), "missing_field"),
    (orjson.dumps({"id": "a", "ts": 1, "text": "hi", "rating": 5}), "unknown_field"),
    (orjson.dumps({"id": "a", "ts": 1, "text": ""}), "invalid_value"),
    (orjson.dumps({"id": 7, "ts": 1, "text": "hi"}), "invalid_type"),
    (orjson.dumps({"id": "a", "ts": 1, "text": "x" * MAX_BYTES}), "too_large"),
])
def test_invalid_feedback_is_dead_lettered(raw: bytes, reason: str, registry: ModelRegistry,
                                           executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    good_before, bad, good_after = r.feedback("g1", "great"), r.event(raw), r.feedback("g2", "awful")
    handle(r, [good_before, bad, good_after])
    (dead,) = r.records(DLQ)
    assert dead["reason"] == reason and dead["offset"] == 1 and dead["source_topic"] == FEEDBACK
    assert dead["payload"] == raw.decode()
    assert r.send.to(DLQ)[0].key == b"k"  # the input's key
    assert [s["id"] for s in r.records(SENTIMENT)] == ["g1", "g2"]
    assert [e["id"] for e in r.records(ESCALATIONS)] == ["g2"]
    assert sample(r.metrics, "sentinel_dead_letters_total", topic=FEEDBACK, reason=reason) == 1
    assert sample(r.metrics, "sentinel_messages_total", topic=FEEDBACK, outcome="invalid") == 1
    assert sample(r.metrics, "sentinel_messages_total", topic=FEEDBACK, outcome="ok") == 2


def test_only_invalid_input_runs_no_inference(registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    handle(r, [r.event(b"[]")])
    assert [d["reason"] for d in r.records(DLQ)] == ["not_an_object"]
    assert r.send.to(SENTIMENT) == []
    labels = {"model": registry.classifier.manifest.name}
    assert r.metrics.registry.get_sample_value("sentinel_inference_batch_size_count", labels) is None
    assert sample(r.metrics, "sentinel_batch_size_count", agent="feedback") == 1


def test_the_batch_completes_only_after_outputs_are_acknowledged(registry: ModelRegistry,
                                                                 executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor, auto_ack=False)
    events = [r.feedback("n1", "broken, refund"), r.feedback("p1", "great"), r.event(b"bad")]

    async def go() -> None:
        task = asyncio.create_task(r.handler.handle(events))
        for _ in range(500):
            if len(r.send.sent) == 4:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
        assert r.send.pending() == 4 and not task.done()  # 1 dead letter, 2 sentiment, 1 escalation
        assert sample(r.metrics, "sentinel_messages_total", topic=FEEDBACK, outcome="ok") == 0
        r.send.ack_all()
        await asyncio.wait_for(task, 5.0)

    asyncio.run(go())
    assert sample(r.metrics, "sentinel_messages_total", topic=FEEDBACK, outcome="ok") == 2
    # Dead letters are published first, then each sentiment followed by its escalation.
    assert [s.topic for s in r.send.sent] == [DLQ, SENTIMENT, ESCALATIONS, SENTIMENT]


def test_a_null_value_record_is_dead_lettered(registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    good, tombstone = r.feedback("g1", "great"), r.event(b"")
    tombstone.value = tombstone.message.value = None  # type: ignore[assignment]  # what Faust delivers
    handle(r, [good, tombstone])
    assert [(d["offset"], d["reason"]) for d in r.records(DLQ)] == [(1, "tombstone")]
    assert [s["id"] for s in r.records(SENTIMENT)] == ["g1"]
