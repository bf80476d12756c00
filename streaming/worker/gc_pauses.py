"""Garbage-collector pauses: measured per generation, and optionally made cheaper.

CPython's cyclic collector runs in whichever thread allocates past a threshold and holds
the GIL while it scans, so every tick waiting on the event loop waits for it. A young
collection scans the objects allocated since the last one (sub-millisecond); a full one
(generation 2) walks every tracked container in the heap: Faust's, aiokafka's and the
model registry's start-up objects as well as the symbols' states. ``watch`` puts each
pause in ``sentinel_gc_pause_seconds``; ``freeze_alive`` moves what is alive out of the
collector's reach (``gc.freeze``: never scanned again; still freed by reference counting
unless it ends up in a reference cycle), after one full collection so no cyclic garbage is
frozen with it. With ``SENTINEL_GC_FREEZE`` the worker freezes before it starts and once
more after 10 s (app.py). Off by default: it cut full pauses from 40-60 ms to ~10 ms but
did not lower p99 in the bench (docs/benchmarks.md, "Tail latency").
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)
Callback = Callable[[str, dict[str, Any]], None]


def watch(observe: Callable[[int, float], None]) -> Callback:
    """Report every collection as ``observe(generation, seconds)``; returns the installed callback."""
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observe(int(info["generation"]), time.perf_counter() - started[0])

    gc.callbacks.append(callback)
    return callback


def tune(*, freeze: bool, threshold0: int = 0) -> None:
    """``threshold0`` > 0 replaces generation 0's allocation threshold (CPython's is 700)."""
    if threshold0 > 0:
        _, t1, t2 = gc.get_threshold()
        gc.set_threshold(threshold0, t1, t2)
    if freeze:
        freeze_alive()
    logger.info("gc: thresholds %s", gc.get_threshold())


def freeze_alive() -> int:
    """Collect once, then freeze every surviving object; returns how many are frozen in all."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("gc: %d objects frozen", frozen)
    return frozen
