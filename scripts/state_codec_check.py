"""Cost of a symbol's state in the worker: checkpoint write, undo copy, memory (issue 14).

Side by side in one run, on states with full detector histories (price and volume):
the packed binary record (``SymbolState.to_bytes``) against the JSON record the worker
wrote before (``to_dict`` + orjson), and float64-array histories against the list
histories they replaced (rebuilt here as lists of distinct float objects, as a running
worker held them). Prints JSON; ``--json FILE`` also writes it.

    python scripts/state_codec_check.py --json docs/results/state-codec.json
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import subprocess
import sys
import time
import timeit
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streaming.core.detector import DetectorConfig, ResidualDetector  # noqa: E402
from streaming.core.schemas import Tick  # noqa: E402
from streaming.core.windows import SymbolState  # noqa: E402
from streaming.serving.inference import latest_version_dir, load_forecaster  # noqa: E402
from streaming.serving.pipeline import process_ticks  # noqa: E402


def full_states(n_symbols: int, steps: int, seed: int = 0) -> dict[str, SymbolState]:
    forecaster = load_forecaster(latest_version_dir(REPO / "models", "price-forecast"))
    detector, rng = ResidualDetector(DetectorConfig()), np.random.default_rng(seed)
    states: dict[str, SymbolState] = {}
    prices = np.full(n_symbols, 100.0)
    for start in range(0, steps, 50):
        ticks = []
        for i in range(start, start + 50):
            prices *= 1 + rng.normal(0, 0.001, n_symbols)
            ts = 1_700_000_000_000 + i * 1000
            ticks += [Tick(f"S{s}", ts, float(prices[s]), float(rng.integers(100, 1000)))
                      for s in range(n_symbols)]
        process_ticks(ticks, states, forecaster, detector)
    return states


def as_lists(state: SymbolState) -> SymbolState:
    """The same state with list histories of distinct float objects (the design before)."""
    out = state.copy()
    for det in (out.detector, out.volume):
        if det is not None:
            det.series.shape_buf = [v + 0.0 for v in det.series.shape_buf]  # type: ignore[assignment]
            det.series.fine_buf = [v + 0.0 for v in det.series.fine_buf]  # type: ignore[assignment]
    return out


def per_symbol_bytes(make: Any, n: int) -> float:
    gc.collect()
    tracemalloc.start()
    kept = [make(i) for i in range(n)]
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return used / n


def micro(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--steps", type=int, default=6000, help="ticks per symbol (fills the shape history)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    states = full_states(args.symbols, args.steps)
    items = list(states.values())
    state = items[0]
    listed = [as_lists(s) for s in items]
    binary, js = state.to_bytes(), orjson.dumps(state.to_dict())
    assert SymbolState.from_value(binary).to_dict() == state.to_dict()
    n = len(items)
    result: dict[str, Any] = {
        "meta": {"command": " ".join(["scripts/state_codec_check.py", *sys.argv[1:]]),
                 "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                          capture_output=True, text=True).stdout.strip(),
                 "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count()}},
        "symbols": n, "ticks_per_symbol": args.steps,
        "history_points": {"price": len(state.detector.series.shape_buf),
                           "volume": len(state.volume.series.shape_buf) if state.volume else 0},
        "record_bytes": {"binary": len(binary), "json": len(js)},
        "write_us_per_symbol": {"binary": micro(lambda: [s.to_bytes() for s in items], 20) / n,
                                "json": micro(lambda: [orjson.dumps(s.to_dict()) for s in items], 5) / n},
        "read_us_per_symbol": {"binary": micro(lambda: SymbolState.from_value(binary), 500),
                               "json": micro(lambda: SymbolState.from_value(js), 100)},
        "undo_copy_us_per_symbol": {"arrays": micro(lambda: [s.copy() for s in items], 20) / n,
                                    "lists": micro(lambda: [s.copy() for s in listed], 20) / n},
        "memory_bytes_per_symbol": {
            "live_arrays": per_symbol_bytes(lambda i: items[i % n].copy(), n),
            "live_lists": per_symbol_bytes(lambda i: as_lists(items[i % n]), n),
            "stored_binary": per_symbol_bytes(lambda i: items[i % n].to_bytes(), n),
            "stored_json_dict": per_symbol_bytes(
                lambda i: orjson.loads(orjson.dumps(items[i % n].to_dict())), n)},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
