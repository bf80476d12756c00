"""Fault-test scaffolding: a labelled stream, its in-process reference, and a checker.

The reference is the same pure pipeline the worker runs (same tiny ONNX model, same
detector) applied in-process to the same ticks, so any missing or differing output from
the real, crashed-and-restarted worker is a real loss or a state error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export.manifest import FORECAST_MODEL
from streaming.detector import DetectorConfig, ResidualDetector
from streaming.inference import latest_version_dir, load_forecaster
from streaming.pipeline import process_ticks
from streaming.producers import tick_payload
from streaming.schemas import Tick
from streaming.synthetic import SyntheticConfig, generate
from streaming.windows import SymbolState
from tests.integration.kafka_io import produce


@dataclass
class Reference:
    forecasts: dict[tuple[str, int], float]
    anomalies: set[str]


def labelled_stream(symbols: int, per_symbol: int, seed: int = 11) -> list[Tick]:
    ticks, _ = generate(SyntheticConfig(symbols=symbols, ticks_per_symbol=per_symbol, seed=seed))
    return ticks


def reference(ticks: list[Tick], models_dir: Path, batch: int = 997) -> Reference:
    forecaster = load_forecaster(latest_version_dir(models_dir, FORECAST_MODEL))
    detector = ResidualDetector(DetectorConfig())
    states: dict[str, SymbolState] = {}
    forecasts: dict[tuple[str, int], float] = {}
    anomalies: set[str] = set()
    for i in range(0, len(ticks), batch):
        result = process_ticks(ticks[i:i + batch], states, forecaster, detector)
        forecasts.update({(r["symbol"], r["ts"]): r["forecast"] for r in result.forecasts})
        anomalies.update(a["alert_id"] for a in result.anomalies)
    return Reference(forecasts, anomalies)


@dataclass
class Outcome:
    forecasts: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    def diagnose(self, ref: Reference, limit: int = 12) -> str:
        """Where the lost and wrong forecasts are, per symbol (first/last ts, count), for a failure."""
        seen = {(r["symbol"], r["ts"]) for r in self.forecasts}
        wrong = {(r["symbol"], r["ts"]) for r in self.forecasts if (r["symbol"], r["ts"]) in ref.forecasts
                 and abs(r["forecast"] - ref.forecasts[(r["symbol"], r["ts"])]) > 1e-6 * r["forecast"]}
        lines = []
        for label, keys in (("lost", set(ref.forecasts) - seen), ("wrong", wrong)):
            by_symbol: dict[str, list[int]] = {}
            for symbol, ts in keys:
                by_symbol.setdefault(symbol, []).append(ts)
            for symbol, stamps in sorted(by_symbol.items())[:limit]:
                lines.append(f"{label} {symbol}: {len(stamps)} ts {min(stamps)}..{max(stamps)}")
        return "\n".join(lines)

    def check(self, ref: Reference) -> dict[str, int]:
        """Lost and mismatched must be 0; duplicates are at-least-once's cost, reported."""
        seen = Counter((r["symbol"], r["ts"]) for r in self.forecasts)
        wrong = sum(abs(r["forecast"] - ref.forecasts[(r["symbol"], r["ts"])]) > 1e-6 * r["forecast"]
                    for r in self.forecasts if (r["symbol"], r["ts"]) in ref.forecasts)
        alerts = Counter(a["alert_id"] for a in self.anomalies)
        return {"forecasts_expected": len(ref.forecasts), "anomalies_expected": len(ref.anomalies),
                "forecasts_lost": len(set(ref.forecasts) - set(seen)),
                "anomalies_lost": len(ref.anomalies - set(alerts)),
                "forecasts_unexpected": len(set(seen) - set(ref.forecasts)),
                "forecast_values_wrong": wrong,
                "forecast_duplicates": sum(seen.values()) - len(seen),
                "anomaly_duplicates": sum(alerts.values()) - len(alerts)}


class BackgroundProducer(threading.Thread):
    """Sends ticks in chunks at roughly ``rate`` ticks/s while the test injects faults."""

    def __init__(self, bootstrap: str, topic: str, ticks: list[Tick], rate: float, chunk: int = 500):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.ticks, self.rate, self.chunk = bootstrap, topic, ticks, rate, chunk
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(0, len(self.ticks), self.chunk):
                start = time.monotonic()
                part = self.ticks[i:i + self.chunk]
                self._send(part)
                time.sleep(max(0.0, len(part) / self.rate - (time.monotonic() - start)))
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def _send(self, part: list[Tick], attempts: int = 60) -> None:
        """Retry a chunk while the broker is down; a resent tick is a duplicate the worker drops."""
        for attempt in range(attempts):
            try:
                produce(self.bootstrap, self.topic, [(t.symbol.encode(), tick_payload(t)) for t in part])
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(1.0)
