"""``sentinel demo``: broker, worker, producers, alerts and metrics in one command.

Offline it replays ``../shared/data`` (or synthetic prices when that is absent);
it stops everything it started on Ctrl-C or after ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from streaming.core.schemas import Feedback, Tick
from streaming.errors import ConfigError
from streaming.settings import REPO_ROOT, Settings
from streaming.sources import producers, replay
from streaming.sources.synthetic import SyntheticConfig, generate
from streaming.tools.alerts import format_alert, tail
from streaming.tools.processes import free_port, stop_process
from streaming.tools.scrape import scrape, value

REPO_ROOT = REPO_ROOT


def demo_dir() -> Path:
    """Demo state lives under the current directory, like `sentinel broker start`."""
    return Path.cwd() / ".sentinel" / "demo"
FALLBACK_FEEDBACK = [
    "The zipper broke after one wear, I want a refund.",
    "Love this dress, fits perfectly and the colour is great.",
    "Terrible quality, returned it. Never again.",
    "Nice fabric, arrived quickly, very happy.",
]


def ensure_broker(settings: Settings, explicit: bool) -> tuple[Settings, Any]:
    """Use the configured broker, or start the dev broker and return its handle."""
    from streaming.kafka import broker

    if explicit:
        return settings, None
    data_dir = demo_dir() / "broker"
    running = broker.broker_status(data_dir)
    if running:
        return settings.with_overrides(kafka_bootstrap=running), None
    print("starting the dev Kafka broker (first run downloads the jars with Maven)...", flush=True)
    handle = broker.start_broker(broker.BrokerConfig(data_dir=data_dir, port=free_port(),
                                                     controller_port=free_port()))
    return settings.with_overrides(kafka_bootstrap=handle.bootstrap), handle


def start_worker(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "streaming.cli", "worker", "--bootstrap", settings.kafka_bootstrap,
           "--metrics-port", str(port), "--state-dir", str(demo_dir() / "worker"),
           "--models-dir", str(settings.models_dir), "--log-level", "WARNING"]
    if settings.topic_prefix:
        cmd += ["--topic-prefix", settings.topic_prefix]
    log = (demo_dir() / "worker.log").open("ab")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                            start_new_session=True)


def wait_for_metrics(url: str, worker: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise ConfigError(f"worker exited with {worker.returncode}; see {demo_dir() / 'worker.log'}")
        with contextlib.suppress(OSError):
            if value(scrape(url, timeout=2), "sentinel_model_info"):
                return
        time.sleep(0.5)
    raise ConfigError(f"worker metrics did not come up at {url}")


def price_source(data_root: Path) -> Iterable[Tick]:
    intraday = data_root / "prices" / "intraday" / "recent_5min"
    if intraday.is_dir():
        print(f"replaying real 5-minute bars from {intraday}", flush=True)
        return replay.merged_ticks(replay.price_files(intraday))
    print(f"{intraday} not found: replaying a synthetic labelled stream instead", flush=True)
    ticks, _ = generate(SyntheticConfig(symbols=10, ticks_per_symbol=20_000))
    return ticks


def feedback_source(data_root: Path) -> Iterator[Feedback]:
    reviews = data_root / "reviews" / "womens_clothing_ecommerce_reviews.csv.gz"
    if reviews.is_file():
        yield from replay.read_feedback(reviews, 0)
    while True:
        for i, text in enumerate(FALLBACK_FEEDBACK):
            yield Feedback(id=f"demo-{time.time_ns()}-{i}", ts=0, text=text, channel="demo")


async def _run(settings: Settings, args: argparse.Namespace, metrics_url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration:
        loop.call_later(args.duration, stop.set)
    data_root = Path(args.data_root) if args.data_root else settings.data_root
    tasks = [
        asyncio.create_task(tail(settings, lambda a: print(format_alert(a), flush=True), stop=stop)),
        asyncio.create_task(producers.produce_ticks(settings, price_source(data_root), rate=args.rate,
                                                    keep_ts=False)),
        asyncio.create_task(producers.produce_feedback(settings, feedback_source(data_root), rate=5.0)),
        asyncio.create_task(_status(metrics_url, stop)),
    ]
    await stop.wait()
    for task in tasks[1:]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _status(url: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(10)
        with contextlib.suppress(OSError):
            m = await asyncio.to_thread(scrape, url)
            print(f"-- metrics {url}: forecasts={value(m, 'sentinel_forecasts_total'):.0f} "
                  f"anomalies={value(m, 'sentinel_anomalies_total'):.0f} "
                  f"feedback={value(m, 'sentinel_sentiment_total'):.0f} "
                  f"escalations={value(m, 'sentinel_escalations_total'):.0f} "
                  f"dead_letters={value(m, 'sentinel_dead_letters_total'):.0f}", flush=True)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    demo_dir().mkdir(parents=True, exist_ok=True)
    # Client reconnect chatter (coordinator not ready on a fresh broker) is not for the demo screen.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    explicit = bool(args.bootstrap) or "SENTINEL_KAFKA_BOOTSTRAP" in os.environ
    settings, broker_handle = ensure_broker(settings, explicit)

    port = args.metrics_port or free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    worker = start_worker(settings, port)
    try:
        wait_for_metrics(metrics_url, worker)
        print(f"worker up; metrics at {metrics_url}; broker {settings.kafka_bootstrap}; "
              "alerts follow (Ctrl-C stops)", flush=True)
        asyncio.run(_run(settings, args, metrics_url))
    finally:
        stop_process(worker)
        if broker_handle is not None:
            broker_handle.stop()
        print("demo stopped", flush=True)
    return 0
