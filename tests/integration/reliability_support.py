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

import orjson

from export.manifest import FORECAST_MODEL
from streaming.core.detector import DetectorConfig, ResidualDetector
from streaming.core.schemas import Tick
from streaming.core.windows import SymbolState
from streaming.serving.inference import latest_version_dir, load_forecaster
from streaming.serving.pipeline import process_ticks
from streaming.sources.producers import tick_payload
from streaming.sources.synthetic import SyntheticConfig, generate
from tests.integration.kafka_io import produce, read_all


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

    def lost(self, ref: Reference) -> list[tuple[str, int]]:
        return sorted(set(ref.forecasts) - {(r["symbol"], r["ts"]) for r in self.forecasts})

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


def history(bootstrap: str, ticks_topic: str, forecasts_topic: str, changelog_topic: str,
            symbols: list[str], step_ms: int = 1000) -> str:
    """For a failure: where each symbol's state first skipped a tick, and its records around there.

    A state's ``n`` (ticks seen) must equal its tick index + 1; the first record where it
    does not marks the lost tick. Lines carry the broker's append time, partition and
    offset, so the loss can be placed against the kills and the worker incarnations.
    """
    wanted = {s.encode() for s in symbols}
    records: list[tuple[str, Any]] = []
    for label, topic in (("tick", ticks_topic), ("state", changelog_topic), ("forecast", forecasts_topic)):
        records.extend((label, rec) for rec in read_all(bootstrap, topic)
                       if rec.key and rec.key.strip(b'"') in wanted)
    lines = []
    for symbol in symbols:
        mine = [(label, rec, _record(label, rec.value)) for label, rec in records
                if rec.key.strip(b'"') == symbol.encode()]
        first = min((v["ts"] for label, _, v in mine if label == "tick"), default=0)
        broken = [v["ts"] for label, _, v in mine
                  if label == "state" and v["n"] != (v["ts"] - first) // step_ms + 1]
        if not broken:
            lines.append(f"{symbol}: every state counts its ticks")
            continue
        lo, hi = min(broken) - 3 * step_ms, min(broken) + step_ms
        for label, rec, value in sorted(mine, key=lambda m: m[1].timestamp):
            if lo <= value.get("ts", 0) <= hi:
                extra = f" n={value['n']}" if label == "state" else ""
                stamp = time.strftime("%H:%M:%S", time.gmtime(rec.timestamp / 1000))
                lines.append(f"{stamp}.{rec.timestamp % 1000:03d} {label:8} {symbol} "
                             f"ts={value['ts']}{extra} p{rec.partition}@{rec.offset}")
    return "\n".join(lines)


def _record(label: str, value: bytes) -> dict[str, Any]:
    """A tick or forecast (JSON), or a state record (binary) as its ``ts`` and ``n``."""
    if label != "state":
        return dict(orjson.loads(value))
    state = SymbolState.from_value(value)
    return {"ts": state.last_ts, "n": state.ticks_seen}


def ticks_missing_from_state(bootstrap: str, changelog_topic: str, ticks: list[Tick]) -> int:
    """Ticks the final per-symbol states never counted (0 when no window skipped a tick).

    Each state carries ``n``, the ticks it has absorbed; after the whole stream the last
    changelog record of a symbol must have counted every tick of it. This catches a state
    restored older than the committed offsets even where the forecast values happen to
    agree with the reference.
    """
    expected = Counter(t.symbol for t in ticks)
    last: dict[str, int] = {}
    for rec in read_all(bootstrap, changelog_topic):
        last[orjson.loads(rec.key)] = SymbolState.from_value(rec.value).ticks_seen
    return sum(n - min(last.get(symbol, 0), n) for symbol, n in expected.items())
