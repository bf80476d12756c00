"""The service end to end on the real broker: ticks, spikes, feedback, bad input, /metrics."""

from __future__ import annotations

import orjson

from streaming import topics
from tests.integration.conftest import tick_messages
from tests.integration.kafka_io import WorkerProcess, consume, metric, produce, scrape


def test_every_tick_after_the_window_fills_gets_a_forecast(worker: WorkerProcess) -> None:
    before = scrape(worker.metrics_url)
    symbols = ["FA", "FB", "FC"]
    for s in symbols:
        produce(worker.bootstrap, worker.topic(topics.TICKS), tick_messages(s, 100))
    expected = {(s, 1_000 + i) for s in symbols for i in range(59, 100)}
    records = consume(worker.bootstrap, worker.topic(topics.FORECASTS),
                      lambda r: expected <= {(x["symbol"], x["ts"]) for x in r})
    got = {(x["symbol"], x["ts"]) for x in records if x["symbol"] in symbols}
    assert got == expected
    after = scrape(worker.metrics_url)
    assert metric(after, "sentinel_forecasts_total") - metric(before, "sentinel_forecasts_total") >= 123
    ok = "sentinel_messages_total"
    delta = metric(after, ok, topic=worker.topic(topics.TICKS), outcome="ok") - \
        metric(before, ok, topic=worker.topic(topics.TICKS), outcome="ok")
    assert delta == 300


def test_a_spike_produces_an_anomaly_with_its_alert_id(worker: WorkerProcess) -> None:
    produce(worker.bootstrap, worker.topic(topics.TICKS), tick_messages("SPK", 200, spike_at=170))
    records = consume(worker.bootstrap, worker.topic(topics.ANOMALIES),
                      lambda r: any(x["symbol"] == "SPK" for x in r))
    spk = [x for x in records if x["symbol"] == "SPK"]
    assert [x["alert_id"] for x in spk] == ["SPK:1170"]
    assert spk[0]["score"] >= spk[0]["threshold"] and spk[0]["severity"] in ("high", "critical")


def test_negative_feedback_is_escalated_and_positive_is_not(worker: WorkerProcess) -> None:
    msgs = [("neg-1", "The strap is broken and customer service ignored me. Refund!"),
            ("pos-1", "I love this top, great quality and perfect fit.")]
    produce(worker.bootstrap, worker.topic(topics.FEEDBACK),
            [(i.encode(), orjson.dumps({"id": i, "ts": 5, "text": t, "channel": "email"})) for i, t in msgs])
    sentiment = consume(worker.bootstrap, worker.topic(topics.SENTIMENT),
                        lambda r: {"neg-1", "pos-1"} <= {x["id"] for x in r})
    labels = {x["id"]: x["label"] for x in sentiment}
    assert labels["neg-1"] == "negative" and labels["pos-1"] == "positive"
    escalations = consume(worker.bootstrap, worker.topic(topics.ESCALATIONS),
                          lambda r: any(x["id"] == "neg-1" for x in r), timeout=20)
    ids = {x["id"] for x in escalations}
    assert "neg-1" in ids and "pos-1" not in ids
    esc = next(x for x in escalations if x["id"] == "neg-1")
    assert esc["alert_id"] == "fb:neg-1" and esc["priority"] == "P1" and "refund" in esc["reason"]


INVALID = [
    (topics.TICKS, b"{not json", "invalid_json"),
    (topics.TICKS, b"\xff\xfe\x00", "invalid_utf8"),
    (topics.TICKS, b"[1,2,3]", "not_an_object"),
    (topics.TICKS, orjson.dumps({"symbol": "BAD", "ts": 1}), "missing_field"),
    (topics.TICKS, orjson.dumps({"symbol": "BAD", "ts": 1, "price": "x"}), "invalid_type"),
    (topics.TICKS, orjson.dumps({"symbol": "BAD", "ts": 1, "price": -1.0}), "invalid_value"),
    (topics.TICKS, orjson.dumps({"symbol": "BAD", "ts": 1, "price": 1.0, "x": 1}), "unknown_field"),
    (topics.TICKS, b'{"symbol": "BAD", "ts": 1, "price": Infinity}', "invalid_json"),
    (topics.FEEDBACK, orjson.dumps({"id": "big", "ts": 1, "text": "a" * 20_001}), "invalid_value"),
    (topics.FEEDBACK, b'{"id": "big2", "ts": 1, "text": "' + b"a" * 1_100_000 + b'"}', "too_large"),
]


def test_invalid_messages_are_dead_lettered_and_processing_continues(worker: WorkerProcess) -> None:
    before = scrape(worker.metrics_url)
    for topic, raw, _ in INVALID:
        produce(worker.bootstrap, worker.topic(topic), [(b"bad", raw)])
    produce(worker.bootstrap, worker.topic(topics.FEEDBACK),
            [(b"after", orjson.dumps({"id": "after-bad", "ts": 1, "text": "great, thanks"}))])
    dead = consume(worker.bootstrap, worker.topic(topics.DEAD_LETTER),
                   lambda r: sum(x["partition"] >= 0 and x["payload"] != "{oops" for x in r) >= len(INVALID))
    reasons = sorted(x["reason"] for x in dead if x["payload"] != "{oops")
    assert reasons == sorted(r for _, _, r in INVALID)
    assert all(x["error"] and x["source_topic"].startswith(worker.prefix) for x in dead)
    assert consume(worker.bootstrap, worker.topic(topics.SENTIMENT),
                   lambda r: any(x["id"] == "after-bad" for x in r))
    after = scrape(worker.metrics_url)
    grew = metric(after, "sentinel_dead_letters_total") - metric(before, "sentinel_dead_letters_total")
    assert grew == len(INVALID)
    assert worker.proc is not None and worker.proc.poll() is None


def test_metrics_endpoint_exposes_the_families(worker_metrics_url: str) -> None:
    samples = scrape(worker_metrics_url)
    for family in ("sentinel_forecasts_total", "sentinel_inference_seconds_count",
                   "sentinel_batch_size_count", "sentinel_end_to_end_latency_seconds_count",
                   "sentinel_symbols_tracked", "sentinel_anomalies_total", "sentinel_escalations_total",
                   "sentinel_dead_letters_total", "sentinel_model_info", "sentinel_state_bytes"):
        assert metric(samples, family) > 0, family
