"""Per-symbol state: the rolling price window, last ts, pending forecast, detector stats.

Stored in the Faust table as a plain JSON-able dict so the changelog stays readable
and a restarted worker resumes exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streaming.core.detector import DetectorState

WINDOW = 60


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

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SymbolState:
        if not data:
            return cls()
        return cls(window=list(data["w"]), last_ts=int(data["ts"]), pending_forecast=data["f"],
                   pending_model=data.get("m"), detector=DetectorState.from_list(data["d"]),
                   ticks_seen=int(data.get("n", len(data["w"]))),
                   volume=DetectorState.from_list(data["v"]) if data.get("v") else None)
