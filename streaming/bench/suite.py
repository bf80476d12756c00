"""``sentinel bench``: how fast the worker is, next to the limits of the machine, in one run.

Parts, in order (each reported in the JSON and the table):

1. inference bound: onnxruntime forecast windows/s at batch 1/8/64/256, single-threaded
   and with the worker's thread settings; sentiment messages/s;
2. naive baselines: Keras ``model.predict`` per tick (own subprocess), onnxruntime per tick;
3. end to end on a real broker with a real ``sentinel worker`` subprocess: pre-loaded
   single-tick messages, bundles and feedback, each next to a trivial Faust agent;
4. latency at fixed offered rates (tick ``ts`` to the forecast's broker append time);
5. worker CPU seconds and peak RSS, and bundled throughput with 1..N workers in one group.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from export.manifest import SENTIMENT_MODEL
from streaming import topics
from streaming.bench import inference as inf
from streaming.bench.data import (
    encode_ticks,
    expected_forecasts,
    feedback_messages,
    symbol_names,
    tick_series,
)
from streaming.bench.detector import detector_part
from streaming.bench.report import machine, ratios, render
from streaming.bench.runner import stop_all
from streaming.bench.scenarios import BenchContext, group_run, latency_run, preloaded_run, trivial_run
from streaming.serving.inference import load_sentiment
from streaming.serving.model_registry import LOADERS, wanted_dir
from streaming.settings import REPO_ROOT, Settings
from streaming.tools.processes import parse_cpus, pin

REQUIRED_KEYS = ("end_to_end_ticks_per_s", "single_tick_messages_per_s", "trivial_agent_events_per_s",
                 "feedback_messages_per_s", "inference_bound_windows_per_s", "naive_predict_ticks_per_s",
                 "latency_ms", "peak_rss_mb", "end_to_end_cost_vs_inference_bound",
                 "speedup_vs_naive_predict")


@dataclass(frozen=True)
class BenchOptions:
    """Sizes of one bench run; :meth:`defaults` gives the full or the ``--quick`` set."""

    ticks: int = 200_000
    single_ticks: int = 200_000
    symbols: int = 500
    bundle: int = 100
    feedback: int = 20_000
    rates: tuple[float, ...] = (500.0, 2000.0, 5000.0)
    latency_seconds: float = 10.0
    latency_symbols: int = 1000
    workers: tuple[int, ...] = (1, 2)
    keras_calls: int = 30
    inference_seconds: float = 1.0
    quick: bool = False
    skip: frozenset[str] = field(default_factory=frozenset)
    pin: str | None = None  # "BROKER_CPUS/WORKER_CPUS", e.g. "0/1" (``--pin``)

    @classmethod
    def defaults(cls, quick: bool) -> BenchOptions:
        if not quick:
            return cls()
        return cls(ticks=20_000, single_ticks=8_000, symbols=100, feedback=2_000, rates=(2000.0,),
                   latency_seconds=3.0, latency_symbols=100, workers=(1,), keras_calls=5,
                   inference_seconds=0.2, quick=True)


class Stopwatch:
    def __init__(self, stream: Any = sys.stderr) -> None:
        self.start = time.monotonic()
        self.stream = stream

    def say(self, text: str) -> None:
        print(f"[bench {time.monotonic() - self.start:6.1f}s] {text}", file=self.stream, flush=True)


def inference_part(opts: BenchOptions, settings: Settings, models_dir: Path,
                   say: Callable[[str], None]) -> dict[str, Any]:
    threads = (settings.inference_threads, settings.inference_threads_large)
    say("inference bound: forecast model at batch 1/8/64/256")
    forecast = inf.forecast_bound(models_dir, threads, opts.inference_seconds)
    say("inference bound: sentiment model")
    sentiment = inf.sentiment_bound(models_dir, threads, opts.inference_seconds)
    say("naive: onnxruntime unbatched, one call per tick")
    unbatched = inf.onnx_unbatched_ticks_per_s(models_dir, settings.inference_threads,
                                               400 if opts.quick else 3000)
    say("detector: cost per symbol-tick, price and volume series")
    detector = detector_part(2_000 if opts.quick else 20_000, 10)
    keras: dict[str, Any] = {"ticks_per_s": None, "note": "skipped (--skip keras)"}
    if "keras" not in opts.skip:
        say(f"naive: Keras model.predict per tick ({opts.keras_calls} calls, own subprocess)")
        keras = inf.keras_in_subprocess(models_dir, opts.keras_calls)
    return {"inference_bound_windows_per_s": forecast["windows_per_s"],
            "sentiment_messages_per_s": sentiment["messages_per_s"],
            "naive_predict_ticks_per_s": keras.get("ticks_per_s"),
            "naive_onnx_unbatched_ticks_per_s": unbatched,
            "inference": {"forecast": forecast, "sentiment": sentiment, "keras": keras}, **detector}


def ticks_part(opts: BenchOptions, ctx: BenchContext) -> dict[str, Any]:
    symbols = symbol_names(opts.symbols)
    out: dict[str, Any] = {}
    single = tick_series(opts.single_ticks, symbols)
    expected = expected_forecasts(opts.single_ticks, opts.symbols)
    run, settings = preloaded_run(ctx, "single", topics.TICKS, encode_ticks(single, 1), topics.FORECASTS,
                                  expected)
    trivial = trivial_run(ctx, settings, topics.TICKS, opts.single_ticks)
    # The worker's trimmed Faust speeds the trivial agent up too; stock Faust is what issue
    # 14's ratio was first measured against, so it is shown beside it.
    trimmed = settings.direct_delivery or not settings.faust_monitor
    stock = trivial_run(ctx, settings, topics.TICKS, opts.single_ticks, stock=True) if trimmed else trivial
    bundled = tick_series(opts.ticks, symbols)
    bundles = encode_ticks(bundled, opts.bundle)
    expected = expected_forecasts(opts.ticks, opts.symbols)
    headline, _ = preloaded_run(ctx, "bundled", topics.TICKS, bundles, topics.FORECASTS, expected)
    out.update(single_tick_messages_per_s=run["per_s"], trivial_agent_events_per_s=trivial["events_per_s"],
               trivial_agent_stock_events_per_s=stock["events_per_s"],
               end_to_end_ticks_per_s=headline["per_s"])
    out["runs"] = {"single_tick": run, "trivial_agent": trivial, "trivial_agent_stock": stock,
                   "bundled": headline}
    out["workers"] = {"1": {**headline, "note": "the pre-loaded bundled run"}}
    if any(n > 1 for n in opts.workers):
        out["workers"] = {str(n): group_run(ctx, f"group{n}", bundles, expected, n) for n in opts.workers}
    return out


def feedback_part(opts: BenchOptions, ctx: BenchContext) -> dict[str, Any]:
    classifier = load_sentiment(wanted_dir(ctx.models_dir, SENTIMENT_MODEL))
    texts = inf.feedback_texts(list(classifier.tokenizer.vocab), 500)
    messages = feedback_messages(texts, opts.feedback)
    run, settings = preloaded_run(ctx, "feedback", topics.FEEDBACK, messages, topics.SENTIMENT,
                                  opts.feedback)
    trivial = trivial_run(ctx, settings, topics.FEEDBACK, opts.feedback)
    return {"feedback_messages_per_s": run["per_s"],
            "trivial_agent_feedback_events_per_s": trivial["events_per_s"],
            "runs": {"feedback": run, "trivial_agent_feedback": trivial}}


def latency_part(opts: BenchOptions, ctx: BenchContext) -> dict[str, Any]:
    result = latency_run(ctx, opts.rates, opts.latency_seconds, opts.latency_symbols)
    worker = result.pop("_worker")
    return {"latency_ms": result, "runs": {"latency": worker}}


@contextmanager
def broker_for(bootstrap: str | None, work_dir: Path, say: Callable[[str], None],
               cpus: frozenset[int] | None = None) -> Iterator[str]:
    """The given bootstrap, or a fresh dev broker on free ports for the duration of the run."""
    if bootstrap:
        yield bootstrap
        return
    from streaming.kafka.broker import BrokerConfig, start_broker
    from streaming.tools.processes import free_ports

    port, controller = free_ports(2)
    say("starting a dev Kafka broker")
    handle = start_broker(BrokerConfig(data_dir=work_dir / "kafka", port=port, controller_port=controller))
    pin(handle.pid, cpus)
    try:
        yield handle.bootstrap
    finally:
        say("stopping the dev broker")
        handle.stop()


def snapshot_models(models_dir: Path, work_dir: Path) -> tuple[Path, dict[str, str]]:
    """Copy the served version of each model into the work dir, so every part of the run
    uses one version even if a new release lands meanwhile."""
    target = work_dir / "models"
    served: dict[str, str] = {}
    for name in LOADERS:
        source = wanted_dir(models_dir, name)
        shutil.copytree(source, target / name / source.name)
        served[name] = source.name
    return target, served


def _merge(result: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key in ("runs", "workers") and key in result:
            result[key].update(value)
        else:
            result[key] = value


def split_pin(pin_text: str | None) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """``"0/1"`` -> ({0}, {1}): the broker's CPUs and the workers'."""
    if not pin_text:
        return None, None
    broker, _, workers = pin_text.partition("/")
    return parse_cpus(broker), parse_cpus(workers)


def run_bench(opts: BenchOptions, settings: Settings, bootstrap: str | None = None,
              profile_dir: Path | None = None, keep_work_dir: bool = False,
              clock: Stopwatch | None = None) -> dict[str, Any]:
    """Run every part and return the JSON-able result (top-level keys: ``REQUIRED_KEYS``)."""
    clock = clock or Stopwatch()
    work_dir = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    result: dict[str, Any] = {"machine": machine(), "options": {**asdict(opts), "skip": sorted(opts.skip)},
                              "runs": {}, "workers": {}}
    try:
        models_dir, result["models"] = snapshot_models(settings.models_dir, work_dir)
        _merge(result, inference_part(opts, settings, models_dir, clock.say))
        broker_cpus, worker_cpus = split_pin(opts.pin)
        if broker_cpus is not None:
            clock.say(f"pinned: broker and this process to CPUs {sorted(broker_cpus)}, "
                      f"workers and trivial agents to {sorted(worker_cpus or ())}")
            pin(os.getpid(), broker_cpus)  # the load generator and the output reader share the broker's
        with broker_for(bootstrap, work_dir, clock.say, broker_cpus) as address:
            ctx = BenchContext(settings.with_overrides(kafka_bootstrap=address), models_dir,
                               work_dir, profile_dir, say=clock.say, worker_cpus=worker_cpus)
            try:
                for name, part in (("ticks", ticks_part), ("feedback", feedback_part),
                                   ("latency", latency_part)):
                    if name not in opts.skip:
                        _merge(result, part(opts, ctx))
            finally:
                stop_all()  # workers before the broker, also when a part failed
            result["peak_rss_mb"] = max(ctx.peak_rss_mb, default=None)
    except BaseException:
        clock.say(f"failed: worker logs and state kept in {work_dir}")
        raise
    if not keep_work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    result["ratios"] = ratios(result)
    result.update({k: result["ratios"][k] for k in ("end_to_end_cost_vs_inference_bound",
                                                     "speedup_vs_naive_predict")})
    result["timestamp_type"] = _timestamp_type(result)
    result["elapsed_s"] = time.monotonic() - clock.start
    result["commit"] = _commit()
    result["settings_note"] = _settings_note()
    return result


def _commit() -> str:
    """The measured code's commit (``+dirty`` with uncommitted changes), for the recorded run."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO_ROOT,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _settings_note() -> str:
    """SENTINEL_* variables the workers inherited: a run with a setting changed says so."""
    given = sorted(f"{k}={v}" for k, v in os.environ.items()
                   if k.startswith("SENTINEL_") and "PASSWORD" not in k)
    return ", ".join(given) or "defaults"


def _timestamp_type(result: dict[str, Any]) -> str:
    kinds = {str(r["timestamp_type"]) for r in result["runs"].values()
             if isinstance(r, dict) and r.get("timestamp_type")}
    return ", ".join(sorted(kinds)) or "?"


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def summary(result: dict[str, Any], markdown: bool = False) -> str:
    return render(result, markdown)
