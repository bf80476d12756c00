"""End-to-end scenarios of ``sentinel bench`` against a real broker and real workers.

Throughput is "first to last output record published": the span between the broker
append timestamps (LogAppendTime, see ``bench_kafka``) of the first and last output
record, so worker start-up and group join are excluded and nothing in the bench reads
records while the worker runs (only end offsets are polled).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from streaming import topics
from streaming.bench.data import KeyValue, LiveTicks
from streaming.bench.kafka import (
    OutputRecord,
    create_topics,
    group_members,
    produce_fast,
    produce_paced,
    read_all,
    wait_for_count,
)
from streaming.bench.profile import summarise
from streaming.bench.runner import BenchWorker, Profiler, run_trivial_agent
from streaming.settings import Settings


@dataclass
class BenchContext:
    """What every scenario needs: broker settings, models, scratch space, logging."""

    settings: Settings
    models_dir: Path
    work_dir: Path
    profile_dir: Path | None = None
    timeout_s: float = 600.0
    say: Callable[[str], None] = print
    peak_rss_mb: list[float] = field(default_factory=list)
    worker_cpus: frozenset[int] | None = None  # workers and trivial agents pinned there (``--pin``)

    def fresh(self, label: str) -> Settings:
        """Settings with a fresh topic prefix (and so fresh topics) for one scenario."""
        prefix = f"bench-{label}-{uuid.uuid4().hex[:6]}."
        settings = replace(self.settings, topic_prefix=prefix)
        asyncio.run(create_topics(settings))
        return settings

    def worker(self, settings: Settings, app_id: str) -> BenchWorker:
        return BenchWorker(settings.kafka_bootstrap, self.models_dir, settings.topic_prefix, app_id,
                           self.work_dir, cpus=self.worker_cpus)


def rate_from(records: Sequence[OutputRecord]) -> dict[str, Any]:
    """Records/s between the first and the last append timestamp."""
    if len(records) < 2:
        return {"records": len(records), "seconds": 0.0, "per_s": 0.0, "timestamp_type": "?"}
    stamps = [r.timestamp_ms for r in records]
    span = (max(stamps) - min(stamps)) / 1000
    per_s = (len(records) - 1) / span if span > 0 else 0.0
    return {"records": len(records), "seconds": span, "per_s": per_s,
            "timestamp_type": records[0].timestamp_type}


def _wait_group(settings: Settings, group: str, members: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, count = asyncio.run(group_members(settings, group))
        if state == "Stable" and count == members:
            time.sleep(2.0)  # table recovery finishes after the assignment
            return
        time.sleep(0.5)
    raise RuntimeError(f"consumer group {group} did not settle with {members} members")


def _collect(ctx: BenchContext, workers: list[BenchWorker], settings: Settings, out_topic: str,
             expected: int, profiler: Profiler | None) -> dict[str, Any]:
    """Wait until ``expected`` outputs exist, then stop the workers and read the outputs back."""
    got = asyncio.run(wait_for_count(settings, settings.topic(out_topic), expected, ctx.timeout_s))
    usage = [w.usage() for w in workers]
    stats = workers[0].batch_stats()
    profile = profiler.stop() if profiler else None
    for w in workers:
        w.stop()
    ctx.peak_rss_mb.extend(u["peak_rss_mb"] for u in usage)
    records = asyncio.run(read_all(settings, settings.topic(out_topic), keep_values=False))
    result = rate_from(records)
    result.update(expected=expected, complete=got >= expected, workers=len(workers),
                  cpu_s_since_ready=sum(u["cpu_s"] for u in usage),
                  peak_rss_mb=max(u["peak_rss_mb"] for u in usage), worker_batches=stats)
    if result["seconds"] > 0:
        first = min(r.timestamp_ms for r in records) / 1000
        result["cpu_s"] = sum(w.cpu_between(first, first + result["seconds"]) for w in workers)
        result["cpu_utilisation"] = result["cpu_s"] / result["seconds"]
    if profile is not None:
        result["profile"] = summarise(profile, top=20)
    return result


def _profiler(ctx: BenchContext, worker: BenchWorker, label: str) -> Profiler | None:
    if ctx.profile_dir is None or worker.proc is None:
        return None
    prof = Profiler(worker.proc.pid, ctx.profile_dir / f"{label}.txt")
    return prof if prof.start() else None


def preloaded_run(ctx: BenchContext, label: str, input_topic: str, messages: list[KeyValue],
                  out_topic: str, expected: int) -> tuple[dict[str, Any], Settings]:
    """Pre-load ``messages``, then start one worker and time its outputs."""
    settings = ctx.fresh(label)
    ctx.say(f"{label}: pre-loading {len(messages):,} messages")
    load_s = asyncio.run(produce_fast(settings, settings.topic(input_topic), messages))
    worker = ctx.worker(settings, f"bench-{label}-{uuid.uuid4().hex[:6]}").start()
    ready_s = worker.wait_ready()
    ctx.say(f"{label}: worker ready in {ready_s:.1f}s, processing")
    result = _collect(ctx, [worker], settings, out_topic, expected, _profiler(ctx, worker, label))
    result.update(messages=len(messages), preload_s=load_s, startup_s=ready_s, method="preloaded")
    ctx.say(f"{label}: {result['per_s']:,.0f} outputs/s over {result['seconds']:.1f}s")
    return result, settings


def group_run(ctx: BenchContext, label: str, messages: list[KeyValue], expected: int,
              n_workers: int) -> dict[str, Any]:
    """Start ``n_workers`` in one group, wait for a stable assignment, then send every bundle.

    Pre-loading would let the first worker take everything before the second joins
    (and a rebalance mid-run); starting the group first measures the steady state.
    """
    settings = ctx.fresh(label)
    app_id = f"bench-{label}-{uuid.uuid4().hex[:6]}"
    workers = [ctx.worker(settings, app_id).start() for _ in range(n_workers)]
    for w in workers:
        w.wait_ready()
    _wait_group(settings, app_id, n_workers)
    ctx.say(f"{label}: group of {n_workers} stable, sending {len(messages):,} messages")
    profiler = _profiler(ctx, workers[0], label)
    load_s = asyncio.run(produce_fast(settings, settings.topic(topics.TICKS), messages))
    result = _collect(ctx, workers, settings, topics.FORECASTS, expected, profiler)
    result.update(messages=len(messages), produce_s=load_s, method="group first, then produce")
    ctx.say(f"{label}: {result['per_s']:,.0f} ticks/s with {n_workers} worker(s)")
    return result


def trivial_run(ctx: BenchContext, settings: Settings, input_topic: str, expect: int,
                stock: bool = False) -> dict[str, Any]:
    """The trivial agent with the worker's Faust set-up; ``stock``: Faust's own hand-over and Monitor."""
    what = "trivial agent, stock Faust" if stock else "trivial agent"
    ctx.say(f"{what} on {settings.topic(input_topic)}")
    env = {"SENTINEL_DIRECT_DELIVERY": "false", "SENTINEL_FAUST_MONITOR": "true"} if stock else None
    result = run_trivial_agent(settings.kafka_bootstrap, settings.topic(input_topic), expect,
                               ctx.work_dir, ctx.timeout_s, env=env, cpus=ctx.worker_cpus)
    ctx.say(f"{what}: {result['events_per_s']:,.0f} events/s")
    return result


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan}
    arr = np.asarray(values_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(arr.max())}


def latency_run(ctx: BenchContext, rates: Sequence[float], seconds: float,
                n_symbols: int) -> dict[str, Any]:
    """One worker, symbols pre-warmed, then each offered rate for ``seconds`` in turn."""
    settings = ctx.fresh("latency")
    counts = [max(1, int(r * seconds)) for r in rates]
    live = LiveTicks.create(n_symbols, -(-sum(counts) // n_symbols) + 1)
    worker = ctx.worker(settings, f"bench-latency-{uuid.uuid4().hex[:6]}").start()
    worker.wait_ready()
    tick_topic, out = settings.topic(topics.TICKS), settings.topic(topics.FORECASTS)
    asyncio.run(produce_fast(settings, tick_topic, live.warmup(int(time.time() * 1000) - 3_600_000)))
    expected = asyncio.run(wait_for_count(settings, out, n_symbols, ctx.timeout_s))
    phases, offset = [], 0
    for rate, count in zip(rates, counts, strict=True):
        ctx.say(f"latency: offering {rate:,.0f} ticks/s for {seconds:.0f}s")
        start_ms = int(time.time() * 1000)
        sent, secs = asyncio.run(produce_paced(settings, tick_topic, live.live(offset, count), rate))
        offset, expected = offset + count, expected + count
        asyncio.run(wait_for_count(settings, out, expected, ctx.timeout_s, stall_s=15.0))
        phases.append((rate, start_ms, sent, secs))
        time.sleep(0.5)
    usage, stats = worker.usage(), worker.batch_stats()
    worker.stop()
    ctx.peak_rss_mb.append(usage["peak_rss_mb"])
    records = asyncio.run(read_all(settings, out, keep_values=True))
    result = _latencies(records, phases)
    result["_worker"] = {**usage, "symbols": n_symbols, "worker_batches": stats,
                         "timestamp_type": records[0].timestamp_type if records else "?"}
    return result


def _latencies(records: Sequence[OutputRecord], phases: Sequence[tuple[float, int, int, float]]
               ) -> dict[str, Any]:
    """Tick ``ts`` to forecast append time, per phase (a phase owns ts >= its start)."""
    pairs = [(orjson.loads(r.value)["ts"], r.timestamp_ms) for r in records]
    out: dict[str, Any] = {}
    for i, (rate, start_ms, sent, secs) in enumerate(phases):
        end_ms = phases[i + 1][1] if i + 1 < len(phases) else 2**62
        lat = [app - ts for ts, app in pairs if start_ms <= ts < end_ms]
        out[f"{rate:g}"] = {**percentiles(lat), "n": len(lat), "sent": sent,
                            "offered_per_s": rate, "achieved_per_s": sent / secs if secs else 0.0}
    return out
