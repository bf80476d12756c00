"""``sentinel bench`` arguments and handler (wired into ``streaming/cli.py``)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from export.errors import SentinelError

PARTS = ("keras", "ticks", "feedback", "latency")


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("rates must be positive")
    return values


def _ints(text: str) -> tuple[int, ...]:
    values = _floats(text)
    if any(v != int(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return tuple(int(v) for v in values)


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="end-to-end benchmark against a real broker",
                              description="Inference bound, naive baselines, worker end to end, "
                              "latency at fixed rates, CPU/RSS and 1..N workers; prints a table.")
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in under a minute")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the full result as JSON")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--ticks", type=int, help="bundled ticks to pre-load (default 200,000)")
    p.add_argument("--single-ticks", type=int, help="single-tick messages to pre-load (default = --ticks)")
    p.add_argument("--symbols", type=int, help="symbols the ticks spread over (default 500)")
    p.add_argument("--bundle", type=int, help="ticks per bundle message (default 100)")
    p.add_argument("--feedback", type=int, help="feedback messages to pre-load (default 20,000)")
    p.add_argument("--rates", type=_floats, help="offered tick rates for latency (default 500,2000,5000)")
    p.add_argument("--latency-seconds", type=float, help="seconds per offered rate (default 10)")
    p.add_argument("--latency-symbols", type=int, help="symbols in the latency run (default 1000)")
    p.add_argument("--workers", type=_ints, help="worker counts in one group (default 1,2)")
    p.add_argument("--keras-calls", type=int, help="Keras predict calls for the naive baseline")
    p.add_argument("--pin", metavar="BROKER_CPUS/WORKER_CPUS",
                   help="pin the dev broker (and the bench's own process) and the workers to separate "
                        "CPUs, e.g. 0/1, so a worker's figure is not shared with the broker's")
    p.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    p.add_argument("--models-dir", help="released models directory (SENTINEL_MODELS_DIR)")
    p.add_argument("--bootstrap", help="use this broker instead of starting a dev broker")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="py-spy record each measured worker into DIR (numbers then include its overhead)")
    p.add_argument("--keep-work-dir", action="store_true", help="keep worker logs and state")
    p.set_defaults(func=cmd_bench)
    return p


def options_from(args: argparse.Namespace) -> Any:
    from streaming.bench.suite import BenchOptions

    opts = BenchOptions.defaults(bool(args.quick))
    skip = frozenset(s.strip() for s in args.skip.split(",") if s.strip())
    unknown = skip - set(PARTS)
    if unknown:
        raise SentinelError(f"unknown --skip part(s) {', '.join(sorted(unknown))}; choose from "
                            f"{', '.join(PARTS)}")
    given = {"ticks": args.ticks, "symbols": args.symbols, "bundle": args.bundle,
             "feedback": args.feedback, "rates": args.rates, "latency_seconds": args.latency_seconds,
             "latency_symbols": args.latency_symbols, "workers": args.workers,
             "keras_calls": args.keras_calls, "pin": args.pin}
    opts = replace(opts, skip=skip, **{k: v for k, v in given.items() if v is not None})
    single = args.single_ticks if args.single_ticks is not None else (
        args.ticks if args.ticks is not None else opts.single_ticks)
    opts = replace(opts, single_ticks=single)
    if opts.pin is not None:
        from streaming.bench.suite import split_pin

        try:
            broker, workers = split_pin(opts.pin)
        except ValueError:
            broker = workers = None
        have = os.sched_getaffinity(0)
        if not broker or not workers or not (broker | workers) <= have:
            raise SentinelError(f"--pin wants BROKER_CPUS/WORKER_CPUS among CPUs {sorted(have)}, "
                                f"e.g. 0/1; got {opts.pin!r}")
    if min(opts.ticks, opts.single_ticks, opts.symbols, opts.bundle, opts.feedback) < 1:
        raise SentinelError("--ticks, --single-ticks, --symbols, --bundle and --feedback must be >= 1")
    return opts


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_bench(args: argparse.Namespace) -> int:
    from streaming.bench.suite import run_bench, summary, write_json
    from streaming.serving.model_registry import LOADERS, wanted_dir
    from streaming.settings import load_settings

    # Topic-creation races log retried produce warnings; the bench reports its own progress.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    settings = load_settings(models_dir=args.models_dir)
    opts = options_from(args)
    for name in LOADERS:  # fail in one line before starting anything
        wanted_dir(settings.models_dir, name)
    # SIGTERM unwinds like Ctrl-C, so the bench stops its workers and broker on the way out.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    result = run_bench(opts, settings, bootstrap=args.bootstrap, profile_dir=args.profile,
                       keep_work_dir=args.keep_work_dir)
    argv = sys.argv[1:]
    result["command"] = "sentinel " + shlex.join(argv[argv.index("bench"):] if "bench" in argv else ["bench"])
    if args.json:
        write_json(result, args.json)
    print(summary(result, markdown=args.markdown))
    print(f"\ntimestamps: {result['timestamp_type']}; elapsed {result['elapsed_s']:.0f}s"
          + (f"; JSON: {args.json}" if args.json else ""))
    return 0
