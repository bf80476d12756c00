"""Per-symbol state: the rolling price window, last ts, pending forecast, detector stats.

The worker checkpoints it in a packed binary form (``to_bytes``: a small header, then
float64 blocks): a symbol's detector history is ~2,000 numbers, and the JSON form cost
~150 µs to write and ~40 KB a record, once per changed symbol per checkpoint. The JSON
form (``to_dict``) stays for tests and reading; ``from_value`` reads both, so a changelog
written by an older worker still restores.
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass, field
from typing import Any

import orjson

from streaming.core.detector import DetectorState

WINDOW = 60
_MAGIC = b"SST2"
# magic, last_ts, ticks_seen, pending forecast (NaN: none), then the lengths of the model
# ref (bytes), the window, the detector and the volume detector (float64 counts; 0: none).
_HEADER = struct.Struct("<4sqqdHHII")


@dataclass(slots=True)
class SymbolState:
    window: list[float] = field(default_factory=list)
    last_ts: int = -1
    pending_forecast: float | None = None
    pending_model: str | None = None
    detector: DetectorState = field(default_factory=DetectorState)
    ticks_seen: int = 0
    volume: DetectorState | None = None  # the volume series' detector, once a tick carried one

    def push(self, price: float, ts: int, size: int = WINDOW) -> None:
        self.window.append(price)
        if len(self.window) > size:
            del self.window[: len(self.window) - size]
        self.last_ts = ts
        self.ticks_seen += 1

    def copy(self) -> SymbolState:
        """An independent copy, far cheaper than a ``to_dict`` round trip (a batch's undo point)."""
        return SymbolState(list(self.window), self.last_ts, self.pending_forecast, self.pending_model,
                           self.detector.copy(), self.ticks_seen,
                           None if self.volume is None else self.volume.copy())

    def to_dict(self) -> dict[str, Any]:
        # A copy: the dict may be serialised after this state has moved on.
        out = {"w": list(self.window), "ts": self.last_ts, "f": self.pending_forecast,
               "m": self.pending_model, "d": self.detector.to_list(), "n": self.ticks_seen}
        if self.volume is not None:
            out["v"] = self.volume.to_list()
        return out

    def to_bytes(self) -> bytes:
        model = (self.pending_model or "").encode()
        forecast = math.nan if self.pending_forecast is None else self.pending_forecast
        detector = self.detector.to_array()
        volume = self.volume.to_array() if self.volume is not None else array("d")
        return b"".join((_HEADER.pack(_MAGIC, self.last_ts, self.ticks_seen, forecast, len(model),
                                      len(self.window), len(detector), len(volume)),
                         model, array("d", self.window).tobytes(), detector.tobytes(), volume.tobytes()))

    @classmethod
    def from_value(cls, value: bytes | dict[str, Any] | None) -> SymbolState:
        """A stored state: ``to_bytes`` output, JSON of ``to_dict`` (older changelogs), a dict or None."""
        if value is None or isinstance(value, dict):
            return cls.from_dict(value)
        raw = bytes(value)
        if not raw.startswith(_MAGIC):
            return cls.from_dict(orjson.loads(raw) if raw else None)
        if len(raw) < _HEADER.size:
            raise ValueError(f"state record of {len(raw)} bytes is shorter than its header")
        _, last_ts, seen, forecast, n_model, n_window, n_det, n_vol = _HEADER.unpack_from(raw)
        at = _HEADER.size + n_model
        numbers = array("d")
        body = raw[at:]
        if len(body) % 8 == 0:
            numbers.frombytes(body)
        if len(body) % 8 or len(numbers) != n_window + n_det + n_vol:
            raise ValueError(f"state record of {len(raw)} bytes does not match its header")
        model = raw[_HEADER.size:at].decode() or None
        return cls(window=numbers[:n_window].tolist(), last_ts=last_ts,
                   pending_forecast=None if forecast != forecast else forecast, pending_model=model,
                   detector=DetectorState.from_list(numbers[n_window:n_window + n_det]),
                   ticks_seen=seen,
                   volume=DetectorState.from_list(numbers[n_window + n_det:]) if n_vol else None)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SymbolState:
        if not data:
            return cls()
        return cls(window=list(data["w"]), last_ts=int(data["ts"]), pending_forecast=data["f"],
                   pending_model=data.get("m"), detector=DetectorState.from_list(data["d"]),
                   ticks_seen=int(data.get("n", len(data["w"]))),
                   volume=DetectorState.from_list(data["v"]) if data.get("v") else None)
