"""``sentinel bench`` end to end with tiny sizes on the session broker: keeps the benchmark working.

No timing assertions: only that every part ran and reported positive numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import pytest

from streaming.bench.cli import add_bench_parser, options_from
from streaming.bench.suite import REQUIRED_KEYS, BenchOptions, run_bench, write_json
from streaming.settings import Settings

pytestmark = pytest.mark.slow
HAS_TF = importlib.util.find_spec("tensorflow") is not None


def _positive(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def test_bench_smoke(kafka_broker: object, tiny_models_dir: Path, tmp_path: Path) -> None:
    # feedback > 2 worker batches (256): 60 messages once fit in one batch whose outputs shared
    # one append millisecond, a zero span and so a rate of 0.
    opts = BenchOptions(ticks=1_500, single_ticks=800, symbols=5, bundle=25, feedback=600, rates=(200.0,),
                        latency_seconds=1.0, latency_symbols=5, workers=(1,), keras_calls=2,
                        inference_seconds=0.02, quick=True)
    result = run_bench(opts, Settings(models_dir=tiny_models_dir),
                       bootstrap=kafka_broker.bootstrap)  # type: ignore[attr-defined]
    path = tmp_path / "bench.json"
    write_json(result, path)
    loaded = json.loads(path.read_text())

    for key in REQUIRED_KEYS:
        assert key in loaded, key
    numbers = [k for k in REQUIRED_KEYS if k != "latency_ms"]
    if not HAS_TF:  # the Keras baseline is skipped with a note on a serving-only install
        assert loaded["inference"]["keras"]["note"].startswith("skipped")
        numbers = [k for k in numbers if k not in ("naive_predict_ticks_per_s", "speedup_vs_naive_predict")]
    for key in numbers:
        assert _positive(loaded[key]), (key, loaded[key])
    latency = loaded["latency_ms"]["200"]
    assert latency["n"] > 0
    for key in ("p50", "p95", "p99", "max"):
        assert _positive(latency[key]) or latency[key] == 0, (key, latency)
    assert loaded["timestamp_type"] == "LogAppendTime"
    assert all(run["complete"] for name, run in loaded["runs"].items() if "complete" in run), loaded["runs"]


def test_bench_cli_options() -> None:
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["bench", "--quick", "--rates", "500,2000", "--workers", "1,2", "--ticks", "900"])
    opts = options_from(args)
    assert opts.quick and opts.rates == (500.0, 2000.0) and opts.workers == (1, 2)
    assert opts.ticks == opts.single_ticks == 900
    assert args.func.__name__ == "cmd_bench"
