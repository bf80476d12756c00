"""Pure batch processing: validated inputs + state in, output records out.

The Faust agents only decode, call these functions and publish; everything here
is testable as "list in, list out" with no broker and a real (tiny) ONNX model.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streaming.core.detector import DetectorState, ResidualDetector, log_residual
from streaming.core.escalation import decide, excerpt
from streaming.core.schemas import Feedback, Tick
from streaming.core.windows import SymbolState
from streaming.serving.inference import Forecaster, SentimentClassifier

Record = dict[str, Any]
VOLUME_MODEL = "volume-detector"  # volume alerts come from the detector alone, no forecast model


@dataclass(slots=True)
class PriceResult:
    forecasts: list[Record] = field(default_factory=list)
    anomalies: list[Record] = field(default_factory=list)
    accepted: int = 0
    late: int = 0
    touched: set[str] = field(default_factory=set)
    inference_rows: int = 0


def _accept(ticks: Sequence[Tick], states: MutableMapping[str, SymbolState], window: int,
            result: PriceResult) -> tuple[list[tuple[Tick, int]], list[list[float]]]:
    """Pass 1: drop late ticks, advance windows, snapshot every full window."""
    accepted: list[tuple[Tick, int]] = []
    snapshots: list[list[float]] = []
    for tick in ticks:
        state = states.get(tick.symbol)
        if state is None:
            state = states[tick.symbol] = SymbolState()
        if tick.ts <= state.last_ts:
            result.late += 1
            continue
        state.push(tick.price, tick.ts, window)
        index = -1
        if len(state.window) == window:
            index = len(snapshots)
            snapshots.append(list(state.window))
        accepted.append((tick, index))
        result.touched.add(tick.symbol)
    result.accepted = len(accepted)
    return accepted, snapshots


def process_ticks(ticks: Sequence[Tick], states: MutableMapping[str, SymbolState],
                  forecaster: Forecaster, detector: ResidualDetector) -> PriceResult:
    """Forecast every tick whose window is full and score it against the previous forecast.

    All windows of the batch go through one inference call; scoring then walks the
    ticks in arrival order so each symbol sees its own forecasts in sequence.
    """
    result = PriceResult()
    accepted, snapshots = _accept(ticks, states, forecaster.window, result)
    preds = forecaster.predict(np.asarray(snapshots)) if snapshots else np.empty(0)
    result.inference_rows = len(snapshots)
    threshold = detector.config.threshold
    for tick, index in accepted:
        state = states[tick.symbol]
        if state.pending_forecast is not None:
            expected = state.pending_forecast
            score = detector.score_one(state.detector, log_residual(tick.price, expected),
                                      ts=tick.ts, value=tick.price)
            if score.is_anomaly:
                result.anomalies.append({
                    "alert_id": f"{tick.symbol}:{tick.ts}", "symbol": tick.symbol, "ts": tick.ts,
                    "price": tick.price, "expected": expected, "residual": score.residual,
                    "score": score.score, "threshold": threshold, "severity": score.severity,
                    "model": state.pending_model, "kind": "price"})
        if tick.volume is not None:
            alert = score_volume(tick, state, detector, threshold)
            if alert is not None:
                result.anomalies.append(alert)
        if index < 0:
            state.pending_forecast = state.pending_model = None
            continue
        forecast = float(preds[index])
        state.pending_forecast, state.pending_model = forecast, forecaster.ref
        result.forecasts.append({"symbol": tick.symbol, "ts": tick.ts, "price": tick.price,
                                 "forecast": forecast, "model": forecaster.ref})
    return result


def score_volume(tick: Tick, state: SymbolState, detector: ResidualDetector,
                  threshold: float) -> Record | None:
    """Volume as a second series of the symbol, in log(1 + volume) (volumes are heavy-tailed).

    No forecaster: the detector's own components (level, one-step change, shift, variance,
    shape) score it. ``expected`` is the series' running level before this tick, in shares.
    """
    vstate = state.volume
    if vstate is None:
        vstate = state.volume = DetectorState()
    value = math.log1p(float(tick.volume or 0.0))
    level = vstate.series.mean if vstate.series.n else value
    score = detector.score_one(vstate, math.nan, ts=tick.ts, value=value)
    if not score.is_anomaly:
        return None
    return {"alert_id": f"{tick.symbol}:{tick.ts}:volume", "kind": "volume", "symbol": tick.symbol,
            "ts": tick.ts, "price": tick.price, "volume": tick.volume, "expected": math.expm1(level),
            "residual": value - level, "score": score.score, "threshold": threshold,
            "severity": score.severity, "model": VOLUME_MODEL}


def classify_feedback(messages: Sequence[Feedback],
                      classifier: SentimentClassifier) -> list[tuple[Record, Record | None]]:
    """One sentiment record per message, plus an escalation record for negative ones."""
    if not messages:
        return []
    probs = classifier.predict([m.text for m in messages])
    out: list[tuple[Record, Record | None]] = []
    for msg, p in zip(messages, probs, strict=True):
        p_neg = float(p)
        sentiment = {"id": msg.id, "ts": msg.ts, "label": "negative" if p_neg >= 0.5 else "positive",
                     "p_negative": p_neg, "model": classifier.ref}
        decision = decide(msg.text, p_neg, classifier.threshold)
        escalation = None if decision is None else {
            "alert_id": f"fb:{msg.id}", "id": msg.id, "ts": msg.ts, "p_negative": p_neg,
            "priority": decision.priority, "reason": decision.reason,
            "text_excerpt": excerpt(msg.text), "channel": msg.channel,
            "customer_id": msg.customer_id, "model": classifier.ref}
        out.append((sentiment, escalation))
    return out
