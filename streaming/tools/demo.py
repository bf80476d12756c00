"""``sentinel demo``: broker, worker, producers, alerts and metrics in one command.

It replays ``../shared/data`` when that is present and the real sample shipped in
``data/samples/`` otherwise, so a fresh clone shows real alerts; it records where its broker
is (``streaming.tools.demo_state``) so ``sentinel alerts tail`` in another terminal follows
it, and stops everything it started on Ctrl-C or after ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from streaming.core.schemas import Feedback
from streaming.errors import ConfigError
from streaming.settings import REPO_ROOT, Settings, set_in_environment
from streaming.sources import producers, replay
from streaming.tools import demo_state
from streaming.tools.alerts import format_alert, tail
from streaming.tools.processes import free_port, stop_process
from streaming.tools.scrape import scrape, value

REPO_ROOT = REPO_ROOT
SAMPLE_ROOT = REPO_ROOT / "data" / "samples"
REVIEWS = "womens_clothing_ecommerce_reviews.csv.gz"
DEFAULT_PORT = 9092
FULL_RATE, SAMPLE_RATE = 400.0, 150.0  # ticks/s: the sample's 10 days last about a minute


def demo_dir() -> Path:
    """Demo state lives under the current directory, like `sentinel broker start`."""
    return Path.cwd() / ".sentinel" / "demo"


class Stages:
    """One line per set-up stage with the time since the demo started: where the wait goes."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {text}", flush=True)


@dataclass(frozen=True)
class DemoData:
    """What the demo replays: the shared data when present, else the shipped sample."""

    prices: Path
    reviews: Path
    rate: float

    @property
    def is_sample(self) -> bool:
        return self.prices.is_relative_to(SAMPLE_ROOT)


def choose_data(data_root: Path, sample_root: Path = SAMPLE_ROOT) -> DemoData:
    intraday = data_root / "prices" / "intraday" / "recent_5min"
    reviews = data_root / "reviews" / REVIEWS
    if intraday.is_dir() and reviews.is_file():
        return DemoData(intraday, reviews, FULL_RATE)
    sample = DemoData(sample_root / "prices", sample_root / "reviews" / REVIEWS, SAMPLE_RATE)
    if not (sample.prices.is_dir() and sample.reviews.is_file()):
        raise ConfigError(f"no demo data: neither {data_root} nor the shipped sample {sample_root}")
    return sample


def ensure_broker(settings: Settings, explicit: bool, stage: Stages) -> tuple[Settings, Any]:
    """Use the configured broker, or start the dev broker (on 9092 when free) and return its handle."""
    from streaming.kafka import broker

    if explicit:
        stage(f"broker      {settings.kafka_bootstrap} (given)")
        return settings, None
    data_dir = demo_dir() / "broker"
    running = broker.broker_status(data_dir)
    if running:
        stage(f"broker      {running} (already running from {data_dir})")
        return settings.with_overrides(kafka_bootstrap=running), None
    port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port()
    config = broker.BrokerConfig(data_dir=data_dir, port=port, controller_port=free_port())
    cached = (broker.kafka_cache_dir(config) / ".resolved").is_file()
    if not cached:
        stage("broker jars resolving Apache Kafka from Maven Central (first run only)...")
    broker.ensure_kafka_classpath(config)
    stage(f"broker jars {'cached' if cached else 'downloaded'} in {broker.kafka_cache_dir(config)}")
    handle = broker.start_broker(config)
    note = "" if port == DEFAULT_PORT else f" ({DEFAULT_PORT} is busy)"
    stage(f"broker      Apache Kafka {broker.KAFKA_VERSION} ready at {handle.bootstrap}{note}")
    return settings.with_overrides(kafka_bootstrap=handle.bootstrap), handle


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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


def feedback_source(path: Path) -> Iterator[Feedback]:
    """The reviews, over and over; later passes get new ids so they are new messages."""
    for n in itertools.count():
        for msg in replay.read_feedback(path, 0):
            yield msg if n == 0 else replace(msg, id=f"{msg.id}-r{n}")


def subscribe_hint(bootstrap: str, explicit: bool) -> str:
    """The exact command a second terminal runs to follow this demo's alerts."""
    exe = Path(sys.executable).parent / "sentinel"
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    cmd = f"{exe} alerts tail" if exe.is_file() else "sentinel alerts tail"
    if explicit:
        return f"subscribe from another terminal: {cmd} --bootstrap {bootstrap}"
    return (f"subscribe from another terminal in this directory: {cmd}   "
            f"(anywhere: {cmd} --bootstrap {bootstrap}; add --json for JSON lines)")


async def _prices(settings: Settings, data: DemoData, rate: float, stop: asyncio.Event) -> None:
    ticks = replay.merged_ticks(replay.price_files(data.prices))
    sent = await producers.produce_ticks(settings, ticks, rate=rate, keep_ts=False)
    if not stop.is_set():
        print(f"-- price replay finished: {sent} ticks from {data.prices}; feedback continues "
              "(Ctrl-C stops)", flush=True)


async def _run(settings: Settings, args: argparse.Namespace, data: DemoData, metrics_url: str,
               stage: Stages) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration:
        loop.call_later(args.duration, stop.set)
    rate = args.rate or data.rate
    what = "the shipped real sample" if data.is_sample else "the shared data"
    stage(f"producers   replaying {what}: 5-minute bars from {data.prices} at {rate:g} ticks/s, "
          f"reviews from {data.reviews}")
    tasks = [
        asyncio.create_task(tail(settings, lambda a: print(format_alert(a), flush=True), stop=stop)),
        asyncio.create_task(_prices(settings, data, rate, stop)),
        asyncio.create_task(producers.produce_feedback(settings, feedback_source(data.reviews), rate=5.0)),
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
    stage = Stages()
    demo_dir().mkdir(parents=True, exist_ok=True)
    data = choose_data(Path(args.data_root) if args.data_root else settings.data_root)
    # Client reconnect chatter (coordinator not ready on a fresh broker) is not for the demo screen.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    explicit = bool(args.bootstrap) or set_in_environment("kafka_bootstrap")
    settings, broker_handle = ensure_broker(settings, explicit, stage)
    state = demo_state.state_path()
    demo_state.write_state(state, settings.kafka_bootstrap)

    port = args.metrics_port or free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    worker = start_worker(settings, port)
    try:
        wait_for_metrics(metrics_url, worker)
        stage(f"worker up; metrics at {metrics_url}; broker {settings.kafka_bootstrap}; "
              "alerts follow (Ctrl-C stops)")
        print(subscribe_hint(settings.kafka_bootstrap, explicit), flush=True)
        asyncio.run(_run(settings, args, data, metrics_url, stage))
    finally:
        stop_process(worker)
        if broker_handle is not None:
            broker_handle.stop()
        demo_state.remove_state(state, os.getpid())
        print("demo stopped", flush=True)
    return 0
