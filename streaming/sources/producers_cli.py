"""Argument parsing and orchestration for ``sentinel produce prices|synthetic|feedback``."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from streaming.core.schemas import Tick
from streaming.errors import ConfigError
from streaming.settings import Settings
from streaming.sources import producers, replay
from streaming.sources.synthetic import SyntheticConfig, generate


def add_produce_parser(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                       func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p = sub.add_parser("produce", help="push ticks or feedback to Kafka")
    p.add_argument("source", choices=["prices", "synthetic", "feedback"])
    p.add_argument("--csv-dir", help="prices: directory of price CSVs (daily or intraday)")
    p.add_argument("--tickers", help="prices: yfinance tickers when online (comma list)")
    p.add_argument("--cache-dir", default=".sentinel/yfinance", help="prices: yfinance cache")
    p.add_argument("--symbols", help="prices: only these symbols (comma list); synthetic: count")
    p.add_argument("--csv", help="feedback: review CSV (plain or .gz)")
    p.add_argument("--rate", type=float, default=0.0, help="messages per second (0 = unpaced)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="prices: replay speed-up vs the data's own clock (0 = use --rate)")
    p.add_argument("--limit", type=int, default=0, help="stop after N ticks/messages")
    p.add_argument("--bundle", type=int, default=1, help="ticks per message (bundle form)")
    p.add_argument("--ticks", type=int, default=1000, help="synthetic: ticks per symbol")
    p.add_argument("--labels", help="synthetic: write anomaly label windows to this JSON file")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep-ts", action="store_true",
                   help="prices: keep the data's timestamps (default: re-stamp with the wall clock)")
    p.set_defaults(func=func)
    return p


def _limited(items: Iterable[Tick], limit: int) -> Iterable[Tick]:
    return itertools.islice(items, limit) if limit > 0 else items


def _price_ticks(args: argparse.Namespace) -> Iterable[Tick]:
    symbols = args.symbols.split(",") if args.symbols else None
    if args.csv_dir:
        return replay.merged_ticks(replay.price_files(Path(args.csv_dir), symbols))
    if args.tickers:
        from streaming.sources.online import yfinance_ticks

        return yfinance_ticks(args.tickers.split(","), Path(args.cache_dir))
    raise ConfigError("give --csv-dir DIR (offline replay) or --tickers T1,T2 (yfinance, online)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.source == "feedback":
        if not args.csv:
            raise ConfigError("produce feedback needs --csv FILE")
        msgs = replay.read_feedback(Path(args.csv), int(time.time() * 1000))
        msgs = itertools.islice(msgs, args.limit) if args.limit > 0 else msgs
        sent = asyncio.run(producers.produce_feedback(settings, msgs, args.rate))
        print(f"sent {sent} feedback messages")
        return 0
    if args.source == "synthetic":
        cfg = SyntheticConfig(symbols=int(args.symbols or 10), ticks_per_symbol=args.ticks, seed=args.seed,
                              start_ts=int(time.time() * 1000))
        generated, labels = generate(cfg)
        if args.labels:
            producers.write_labels(Path(args.labels), labels.windows)
        sent = asyncio.run(producers.produce_ticks(settings, _limited(generated, args.limit), args.rate,
                                                   args.bundle, keep_ts=True))
        print(f"sent {sent} synthetic ticks for {cfg.symbols} symbols, {labels.count()} labelled anomalies")
        return 0
    ticks = _limited(_price_ticks(args), args.limit)
    sent = asyncio.run(producers.produce_ticks(settings, ticks, args.rate, args.bundle, args.speed,
                                               keep_ts=args.keep_ts))
    print(f"sent {sent} price ticks")
    return 0
