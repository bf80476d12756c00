"""DeadLetters: one record per invalid message, with its origin, reason and payload, counted."""

from __future__ import annotations

import asyncio
import time

import pytest

from streaming import topics
from streaming.errors import InvalidMessage
from streaming.worker.dead_letters import MAX_DEAD_LETTER_PAYLOAD, DeadLetters
from tests.unit.streaming.worker.fakes import RecordingSend, make_event, new_metrics, sample, topic

DLQ = topic(topics.DEAD_LETTER)
TICKS = topic(topics.TICKS)


def test_record_has_origin_reason_error_and_payload() -> None:
    send, metrics = RecordingSend(), new_metrics()
    dead = DeadLetters(send, DLQ, metrics)
    event = make_event(b"{not json", topic_name=TICKS, partition=3, offset=41, key=b"AAA")
    error = InvalidMessage("invalid_json", "not valid JSON: oops")
    before = int(time.time() * 1000)

    async def run() -> object:
        future = await dead.publish(event, error)
        return await future

    assert asyncio.run(run()) == 0  # publish returns the producer's ack future
    after = int(time.time() * 1000)
    (sent,) = send.sent
    assert (sent.topic, sent.key) == (DLQ, b"AAA")
    record = sent.json
    assert {k: record[k] for k in ("source_topic", "partition", "offset", "reason", "error", "payload")} == {
        "source_topic": TICKS, "partition": 3, "offset": 41, "reason": "invalid_json",
        "error": "invalid_json: not valid JSON: oops", "payload": "{not json"}
    assert before <= record["ts"] <= after
    assert set(record) == {"source_topic", "partition", "offset", "error", "reason", "payload", "ts"}


def test_counters_per_topic_and_reason() -> None:
    send, metrics = RecordingSend(), new_metrics()
    dead = DeadLetters(send, DLQ, metrics)
    feedback = topic(topics.FEEDBACK)

    async def run() -> None:
        for raw, source, reason in ((b"x", TICKS, "invalid_json"), (b"y", TICKS, "invalid_json"),
                                    (b"[]", TICKS, "not_an_object"), (b"{}", feedback, "missing_field")):
            await dead.publish(make_event(raw, topic_name=source), InvalidMessage(reason, "detail"))

    asyncio.run(run())
    assert len(send.to(DLQ)) == 4
    assert sample(metrics, "sentinel_dead_letters_total", topic=TICKS, reason="invalid_json") == 2
    assert sample(metrics, "sentinel_dead_letters_total", topic=TICKS, reason="not_an_object") == 1
    assert sample(metrics, "sentinel_dead_letters_total", topic=feedback, reason="missing_field") == 1
    assert sample(metrics, "sentinel_messages_total", topic=TICKS, outcome="invalid") == 3
    assert sample(metrics, "sentinel_messages_total", topic=feedback, outcome="invalid") == 1


def test_payload_is_truncated_to_the_limit() -> None:
    send = RecordingSend()
    dead = DeadLetters(send, DLQ, new_metrics())
    raw = b"a" * (MAX_DEAD_LETTER_PAYLOAD + 1000)
    asyncio.run(dead.publish(make_event(raw, topic_name=TICKS), InvalidMessage("too_large", "big")))
    payload = send.sent[0].json["payload"]
    assert len(payload) == MAX_DEAD_LETTER_PAYLOAD and payload == "a" * MAX_DEAD_LETTER_PAYLOAD


@pytest.mark.parametrize(("raw", "expected"), [
    (b"\xff\xfeok", "\ufffd\ufffdok"),  # invalid UTF-8 is kept readable, not dropped
    ("é".encode() * 3, "ééé"),
])
def test_payload_is_decoded_with_replacement(raw: bytes, expected: str) -> None:
    send = RecordingSend()
    dead = DeadLetters(send, DLQ, new_metrics())
    asyncio.run(dead.publish(make_event(raw, topic_name=TICKS), InvalidMessage("invalid_utf8", "x")))
    assert send.sent[0].json["payload"] == expected


def test_truncation_inside_a_multibyte_character_stays_valid_json() -> None:
    send = RecordingSend()
    dead = DeadLetters(send, DLQ, new_metrics())
    raw = b"a" + "é".encode() * MAX_DEAD_LETTER_PAYLOAD  # the limit cuts the last 'é' in half
    asyncio.run(dead.publish(make_event(raw, topic_name=TICKS), InvalidMessage("too_large", "x")))
    payload = send.sent[0].json["payload"]
    assert payload.startswith("aé") and len(payload.encode()) <= MAX_DEAD_LETTER_PAYLOAD + 2
    assert payload.endswith("\ufffd")  # the half character, replaced


def test_a_missing_key_stays_none() -> None:
    send = RecordingSend()
    dead = DeadLetters(send, DLQ, new_metrics())
    event = make_event(b"[]", topic_name=TICKS, key=None)
    asyncio.run(dead.publish(event, InvalidMessage("not_an_object", "x")))
    (sent,) = send.sent
    assert sent.key is None and sent.json["payload"] == "[]"
