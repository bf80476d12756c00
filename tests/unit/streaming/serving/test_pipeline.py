"""The pure batch pipeline with real (tiny) ONNX models: list in, list out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from streaming.core.detector import DetectorConfig, ResidualDetector
from streaming.core.schemas import Feedback, Tick
from streaming.core.windows import SymbolState
from streaming.serving.inference import (
    Forecaster,
    SentimentClassifier,
    latest_version_dir,
    load_forecaster,
    load_sentiment,
)
from streaming.serving.pipeline import classify_feedback, process_ticks

SCHEMAS = Path(__file__).resolve().parents[4] / "docs" / "schemas"


def _schema(name: str) -> jsonschema.Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


@pytest.fixture(scope="module")
def forecaster(tiny_models_dir: Path) -> Forecaster:
    return load_forecaster(latest_version_dir(tiny_models_dir, FORECAST_MODEL))


@pytest.fixture(scope="module")
def classifier(tiny_models_dir: Path) -> SentimentClassifier:
    return load_sentiment(latest_version_dir(tiny_models_dir, SENTIMENT_MODEL))


def _walk(symbol: str, n: int, start: int = 0, seed: int = 1) -> list[Tick]:
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    return [Tick(symbol, start + i, float(p)) for i, p in enumerate(prices)]


def test_forecast_for_every_tick_once_window_is_full(forecaster: Forecaster) -> None:
    states: dict[str, SymbolState] = {}
    result = process_ticks(_walk("AAA", 100) + _walk("BBB", 70, seed=2), states, forecaster,
                           ResidualDetector())
    per_symbol = {s: sum(r["symbol"] == s for r in result.forecasts) for s in ("AAA", "BBB")}
    assert per_symbol == {"AAA": 41, "BBB": 11}
    assert all(_schema("prices.forecasts.json").is_valid(r) for r in result.forecasts)
    assert len(states["AAA"].window) == 60 and states["AAA"].last_ts == 99


def test_batching_does_not_change_results(forecaster: Forecaster) -> None:
    ticks = _walk("AAA", 150)
    one: dict[str, SymbolState] = {}
    whole = process_ticks(ticks, one, forecaster, ResidualDetector()).forecasts
    many: dict[str, SymbolState] = {}
    pieces = [r for i in range(0, 150, 7)
              for r in process_ticks(ticks[i:i + 7], many, forecaster, ResidualDetector()).forecasts]
    assert [r["forecast"] for r in whole] == pytest.approx([r["forecast"] for r in pieces], rel=1e-12)
    assert one["AAA"].to_dict() == many["AAA"].to_dict()


def test_late_and_duplicate_ticks_are_counted_and_ignored(forecaster: Forecaster) -> None:
    states: dict[str, SymbolState] = {}
    process_ticks(_walk("AAA", 10, start=100), states, forecaster, ResidualDetector())
    result = process_ticks([Tick("AAA", 109, 1.0), Tick("AAA", 50, 1.0), Tick("AAA", 110, 100.0)],
                           states, forecaster, ResidualDetector())
    assert (result.late, result.accepted) == (2, 1)
    assert states["AAA"].window[-1] == 100.0


def test_spike_produces_one_anomaly_with_deterministic_id(forecaster: Forecaster) -> None:
    ticks = _walk("AAA", 600)
    spike = ticks[550]
    ticks[550] = Tick("AAA", spike.ts, spike.price * math.exp(0.02))  # 20σ of the 0.1% walk
    result = process_ticks(ticks, {}, forecaster, ResidualDetector(DetectorConfig(warmup=50)))
    ids = [a["alert_id"] for a in result.anomalies]
    # The spike is flagged once (its reversion is in the cooldown); the tiny test model's own
    # forecast errors may add one early record, never an alert storm.
    assert ids.count(f"AAA:{spike.ts}") == 1 and len(ids) <= 2
    alert = next(a for a in result.anomalies if a["alert_id"] == f"AAA:{spike.ts}")
    assert alert["severity"] in ("high", "critical") and alert["model"] == forecaster.ref
    assert _schema("prices.anomalies.json").is_valid(alert)


def test_state_survives_serialisation(forecaster: Forecaster) -> None:
    states: dict[str, SymbolState] = {}
    process_ticks(_walk("AAA", 80), states, forecaster, ResidualDetector())
    restored = {"AAA": SymbolState.from_dict(json.loads(json.dumps(states["AAA"].to_dict())))}
    nxt = _walk("AAA", 90)[80:]
    a = process_ticks(nxt, states, forecaster, ResidualDetector())
    b = process_ticks(nxt, restored, forecaster, ResidualDetector())
    assert a.forecasts == b.forecasts


def test_feedback_escalates_negative_only(classifier: SentimentClassifier) -> None:
    msgs = [Feedback("n1", 1, "Terrible, it arrived broken. I want a refund!", "email", "c9"),
            Feedback("p1", 2, "I love it, great fit and beautiful colour")]
    results = classify_feedback(msgs, classifier)
    (s_neg, e_neg), (s_pos, e_pos) = results
    assert s_neg["label"] == "negative" and s_pos["label"] == "positive" and e_pos is None
    assert e_neg is not None and e_neg["alert_id"] == "fb:n1" and e_neg["priority"] == "P1"
    assert "refund" in e_neg["reason"] and e_neg["customer_id"] == "c9"
    assert _schema("feedback.escalations.json").is_valid(e_neg)
    assert all(_schema("feedback.sentiment.json").is_valid(s) for s in (s_neg, s_pos))


def _with_volume(ticks: list[Tick], seed: int = 3) -> list[Tick]:
    rng = np.random.default_rng(seed)
    volumes = np.round(1e6 * np.exp(rng.normal(0, 0.2, len(ticks))))
    return [Tick(t.symbol, t.ts, t.price, float(v)) for t, v in zip(ticks, volumes, strict=True)]


def test_a_volume_burst_is_one_volume_alert(forecaster: Forecaster) -> None:
    ticks = _with_volume(_walk("AAA", 400))
    burst = ticks[300]
    ticks[300] = Tick("AAA", burst.ts, burst.price, 25 * (burst.volume or 0.0))
    result = process_ticks(ticks, {}, forecaster, ResidualDetector())
    volume = [a for a in result.anomalies if a["kind"] == "volume"]
    assert [a["alert_id"] for a in volume] == [f"AAA:{burst.ts}:volume"]
    alert = volume[0]
    assert alert["volume"] == ticks[300].volume and 0.5e6 < alert["expected"] < 2e6
    assert alert["residual"] > math.log(10) and alert["model"] == "volume-detector"
    assert _schema("prices.anomalies.json").is_valid(alert)
    assert all(a["kind"] == "price" for a in result.anomalies if a not in volume)


def test_volume_state_survives_serialisation_and_ticks_without_volume_leave_it_alone(
        forecaster: Forecaster) -> None:
    states: dict[str, SymbolState] = {}
    ticks = _with_volume(_walk("AAA", 120))
    process_ticks(ticks[:80], states, forecaster, ResidualDetector())
    assert states["AAA"].volume is not None and states["AAA"].volume.n == 80
    restored = {"AAA": SymbolState.from_dict(json.loads(json.dumps(states["AAA"].to_dict())))}
    a = process_ticks(ticks[80:], states, forecaster, ResidualDetector())
    b = process_ticks(ticks[80:], restored, forecaster, ResidualDetector())
    assert a.anomalies == b.anomalies and states["AAA"].to_dict() == restored["AAA"].to_dict()
    plain: dict[str, SymbolState] = {}
    process_ticks(_walk("BBB", 70), plain, forecaster, ResidualDetector())
    assert plain["BBB"].volume is None and "v" not in plain["BBB"].to_dict()


@pytest.mark.parametrize("volume", [False, True])
def test_binary_state_round_trips_exactly_and_reads_older_json_records(forecaster: Forecaster,
                                                                       volume: bool) -> None:
    states: dict[str, SymbolState] = {}
    ticks = _walk("AAA", 400)
    process_ticks(_with_volume(ticks) if volume else ticks, states, forecaster, ResidualDetector())
    state = states["AAA"]
    assert len(state.detector.series.shape_buf) > 0 and math.isnan(state.detector.base_abs) is False
    packed = state.to_bytes()
    # Every stored form restores the same state: binary, an older worker's JSON record, a dict.
    for stored in (packed, json.dumps(state.to_dict()).encode(), state.to_dict()):
        restored = SymbolState.from_value(stored)
        assert restored.to_dict() == state.to_dict() and restored.to_bytes() == packed
    assert SymbolState.from_value(None).to_dict() == SymbolState().to_dict()
    assert len(packed) < len(json.dumps(state.to_dict()))
    with pytest.raises(ValueError, match="does not match its header"):
        SymbolState.from_value(packed[:-8])
