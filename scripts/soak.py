"""Soak: many symbols at a steady rate for a long time, kill -9 now and then, the broker restarted once.

    PYTHONPATH=. .venv/bin/python scripts/soak.py --minutes 30 --json docs/results/soak.json
    PYTHONPATH=. .venv/bin/python scripts/soak.py --render docs/results/soak-*.json docs/results/soak.json

Not part of CI (it takes the machine for the whole run). A dev broker on free ports, one worker
with the released models, single-tick messages (one per symbol per step), the worker killed
with SIGKILL every ``--kill-every`` seconds and restarted at once, the broker stopped and
started once half-way. At the end it waits for the worker to catch up and reads
``prices.forecasts`` back: every (symbol, ts) whose window was full must have a forecast
(lost = expected - distinct seen). Also reported: the worker's RSS over time and its slope
between restarts, and after each fault how long until the committed lag is back to its level
before (``steady``: commits trail the 2-s checkpoints and Faust's 1-s commit loop, so under
load the committed lag never reads exactly 0). ``--prefill-steps 4400`` first sends that many ticks
per symbol as bundles, so every detector history is full before the timed run: its RSS is then the
worker's steady-state size, not a history still filling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streaming import topics  # noqa: E402
from streaming.bench.runner import BenchWorker  # noqa: E402
from streaming.kafka.broker import BrokerConfig, start_broker  # noqa: E402
from streaming.settings import REPO_ROOT, load_settings  # noqa: E402
from streaming.tools.processes import free_port  # noqa: E402
from streaming.tools.scrape import scrape  # noqa: E402

WINDOW = 60
T0 = 1_800_000_000_000


class PricePath:
    """One random walk per symbol, one step a second of event time, shared by the prefill and the producer."""

    def __init__(self, symbols: int) -> None:
        self.names = [f"S{i:04d}" for i in range(symbols)]
        self.prices = np.full(symbols, 100.0)
        self.rng = np.random.default_rng(7)
        self.steps = 0

    def step(self) -> tuple[int, npt.NDArray[np.float64]]:
        self.prices *= np.exp(self.rng.normal(0, 0.001, self.prices.size))
        self.steps += 1
        return T0 + (self.steps - 1) * 1000, self.prices.copy()


def prefill(bootstrap: str, topic: str, path: PricePath, steps: int, bundle: int = 100) -> None:
    """``steps`` ticks per symbol as bundles, as fast as the broker takes them: the symbols' histories
    are then as full as they get, so the timed run measures the worker at its steady-state size."""
    async def run() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all",
                                    max_request_size=4 * 2**20)
        await producer.start()
        try:
            for first in range(0, steps, bundle):
                block = [path.step() for _ in range(min(bundle, steps - first))]
                futures = [await producer.send(topic, key=name.encode(), value=orjson.dumps(
                    {"symbol": name, "ticks": [{"ts": ts, "price": float(p[i])} for ts, p in block]}))
                    for i, name in enumerate(path.names)]
                await asyncio.gather(*futures)
        finally:
            await producer.stop()
    asyncio.run(run())


class Producer(threading.Thread):
    """One tick per symbol per step at ``rate`` ticks/s; a failed step is resent (duplicates are dropped)."""

    def __init__(self, bootstrap: str, topic: str, symbols: int, rate: float, seconds: float,
                 path: PricePath) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.symbols, self.path = bootstrap, topic, symbols, path
        self.steps = int(seconds * rate / symbols)
        self.interval = symbols / rate
        self.sent_steps = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by main
            self.error = exc

    async def _run(self) -> None:
        from aiokafka import AIOKafkaProducer

        names = self.path.names
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all")
        await producer.start()
        start = time.monotonic()
        try:
            for step in range(self.steps):
                ts, prices = self.path.step()
                values = [orjson.dumps({"symbol": s, "ts": ts, "price": float(p)})
                          for s, p in zip(names, prices, strict=True)]
                while True:
                    try:
                        futures = [await producer.send(self.topic, key=s.encode(), value=v)
                                   for s, v in zip(names, values, strict=True)]
                        await asyncio.gather(*futures)
                        break
                    except Exception:  # the broker is restarting: send the step again
                        await asyncio.sleep(1.0)
                self.sent_steps = step + 1
                await asyncio.sleep(max(0.0, start + (step + 1) * self.interval - time.monotonic()))
        finally:
            await producer.stop()


class BrokerLag(threading.Thread):
    """The group's committed lag on one topic, read from the broker once a second.

    Independent of the worker: its own gauge refreshes every 5 s and keeps its last value when
    a lookup times out, so right after a restart it can read stale for several seconds.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.group, self.topic, self.interval = bootstrap, group, topic, interval
        self.latest: float | None = None
        self.committed = 0  # sum of the committed offsets: it moves only when the worker commits
        self.sampled_at = 0.0  # monotonic time the latest reading was requested
        self.stopped = threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        while not self.stopped.is_set():
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                await consumer.start()
                while not self.stopped.is_set():
                    t = time.monotonic()
                    committed = await admin.list_consumer_group_offsets(self.group)
                    own = {tp: meta.offset for tp, meta in committed.items() if tp.topic == self.topic}
                    if own:
                        ends = await consumer.end_offsets(list(own))
                        self.latest = float(sum(max(0, ends[tp] - off) for tp, off in own.items()))
                        self.committed = sum(own.values())
                        self.sampled_at = t
                    await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - t)))
            except Exception:  # the broker is restarting: reconnect
                self.latest = None
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()
                await admin.close()


def lag(url: str) -> tuple[float | None, float]:
    """Committed lag on the ticks topic, and the worker's checkpointed state (MB; NaN if down)."""
    try:
        samples = scrape(url, timeout=2)
    except (OSError, ValueError):
        return None, float("nan")
    ticks = [s.value for s in samples
             if s.name == "sentinel_consumer_lag" and s.labels.get("topic", "").endswith(topics.TICKS)]
    state = [s.value for s in samples if s.name == "sentinel_state_bytes"]
    return (sum(ticks) if ticks else None), (state[0] / 2**20 if state else float("nan"))


def distinct_forecasts(bootstrap: str, topic: str, expected: int, timeout: float) -> int:
    async def run() -> int:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    group_id=None, enable_auto_commit=False)
        await consumer.start()
        seen: set[tuple[str, int]] = set()
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        try:
            while len(seen) < expected and time.monotonic() < min(deadline, quiet_since + 30):
                batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
                if batch:
                    quiet_since = time.monotonic()
                for records in batch.values():
                    for r in records:
                        rec = orjson.loads(r.value)
                        seen.add((rec["symbol"], rec["ts"]))
        finally:
            await consumer.stop()
        return len(seen)
    return asyncio.run(run())


def steady(lags: list[tuple[float, float]], now: float, rate: float) -> float:
    """The lag to get back to after a fault: 1.5 x the median of the minute before, at least 2 s of input.

    Commits trail processing by the checkpoint interval plus Faust's commit interval, and the
    reporter refreshes every 5 s, so under load the committed lag never reads 0.
    """
    before = [v for t, v in lags if now - 60 <= t < now]
    return max(2 * rate, 1.5 * float(np.median(before))) if before else 2 * rate


def fault(kind: str, now: float, blags: list[tuple[float, float]], lags: list[tuple[float, float]],
          rate: float) -> dict[str, Any]:
    return {"at_s": round(now, 1), "kind": kind, "back_to": steady(blags, now, rate),
            "back_to_gauge": steady(lags, now, rate), "_since": time.monotonic(), "_committed": None}


def caught_up(pending: dict[str, Any], now: float, sampler: BrokerLag,
              gauge: float | None) -> dict[str, Any] | None:
    """Time the fault's catch-up on both lag readings; None once both are back.

    From the broker: the first reading after the worker has committed again (so not the lag
    of the moment of the kill, before it had time to grow) that is back to the level before.
    """
    at = pending["at_s"]
    from_broker, committed = sampler.latest, sampler.committed
    if sampler.sampled_at <= pending["_since"]:
        from_broker = None  # read before the fault
    elif pending["_committed"] is None:
        pending["_committed"] = committed  # the first reading after it: what the next commit must pass
    if ("caught_up_s" not in pending and from_broker is not None and committed > pending["_committed"]
            and from_broker <= pending["back_to"]):
        pending["caught_up_s"] = round(now - at, 1)
        if "broker_back_after_s" in pending:
            pending["caught_up_after_broker_back_s"] = round(now - at - pending["broker_back_after_s"], 1)
    if "caught_up_s_gauge" not in pending and gauge is not None and gauge <= pending["back_to_gauge"]:
        pending["caught_up_s_gauge"] = round(now - at, 1)
    done = "caught_up_s" in pending and "caught_up_s_gauge" in pending
    if done or now - at > 600:
        pending.pop("_committed", None)
        pending.pop("_since", None)
        return None
    return pending


def worker_rss_mb(worker: BenchWorker) -> float:
    import psutil

    try:
        return float(psutil.Process(worker.proc.pid).memory_info().rss) / 2**20  # type: ignore[union-attr]
    except psutil.Error:
        return float("nan")


def second_half(seg: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [s for s in seg if s[0] - seg[0][0] > (seg[-1][0] - seg[0][0]) / 2] if seg else []


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> float | None:
    samples = [s for s in samples if s[1] == s[1]]
    if len(samples) < 10:
        return None
    t, rss = np.array(samples).T
    return float(np.polyfit(t / 3600.0, rss, 1)[0])


def _span(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{min(known):g} to {max(known):g}" if known else "-"


def render(paths: list[Path]) -> str:
    """The table docs/reliability.md shows, one column per run (oldest first)."""
    runs = [(p, json.loads(p.read_text())) for p in paths]

    def row(name: str, cell: Any) -> str:
        return f"| {name} | " + " | ".join(str(cell(r)) for _, r in runs) + " |"

    def caught(r: dict[str, Any], kind: str, key: str = "caught_up_s") -> str:
        return ", ".join(f"{f[key]:g}" for f in r["faults"] if f["kind"] == kind and key in f) or "-"

    lines = ["| | " + " | ".join(f"`{r['meta']['commit']}` ({p.name})" for p, r in runs) + " |",
             "|---|" + "---:|" * len(runs),
             row("ticks sent / forecasts expected / distinct read back", lambda r:
                 f"{r['ticks_sent']:,} / {r['forecasts_expected']:,} / {r['forecasts_distinct']:,}"),
             row("histories prefilled (ticks per symbol, as bundles, before the timed run)",
                 lambda r: f"{r.get('prefill_ticks_per_symbol') or 0:,}"),
             row("forecasts lost", lambda r: f"**{r['forecasts_lost']}**"),
             row("static group membership", lambda r: "yes" if r.get("group_instance_id") else "no"),
             row("catch-up after each `kill -9` (s)", lambda r: caught(r, "kill -9")),
             row("catch-up after the broker restart (s)", lambda r: caught(r, "broker restart")),
             row("the broker away / catch-up counted from its return (s)", lambda r: ", ".join(
                 f"{f['broker_back_after_s']:g} / {f['caught_up_after_broker_back_s']:g}" for f in r["faults"]
                 if "caught_up_after_broker_back_s" in f) or "-"),
             row("catch-up timed on", lambda r: "broker, every 1 s" if r.get("lag_measured")
                 else "worker's gauge (5-s refresh)"),
             row("same, on the worker's gauge: kills / broker restart (s)", lambda r: (
                 f"{caught(r, 'kill -9', 'caught_up_s_gauge')} / "
                 f"{caught(r, 'broker restart', 'caught_up_s_gauge')}") if r.get("lag_measured") else "-"),
             row("worker peak RSS (MB)", lambda r: f"{r['rss_mb_max']:g}"),
             row("RSS at the end of each process (MB)", lambda r: ", ".join(
                 f"{v:g}" for v in r.get("rss_mb_at_end_of_each_process", [])) or "-"),
             row("RSS slope between restarts (MB/hour)",
                 lambda r: _span(r["rss_slope_mb_per_hour_between_restarts"])),
             row("RSS slope, second half of each process (MB/hour)",
                 lambda r: _span(r.get("rss_slope_mb_per_hour_second_half", []))),
             row("checkpointed state slope, same halves (MB/hour)",
                 lambda r: _span(r.get("state_mb_slope_per_hour_second_half", []))),
             row("RSS minus 2x state, same halves (MB/hour)",
                 lambda r: _span(r.get("rss_minus_2x_state_slope_mb_per_hour_second_half", [])))]
    return "\n".join(lines)


def main() -> int:  # noqa: PLR0915 - one linear script
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--symbols", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000.0, help="ticks per second")
    p.add_argument("--kill-every", type=float, default=300.0)
    p.add_argument("--dynamic-membership", action="store_true",
                   help="no SENTINEL_GROUP_INSTANCE_ID: a restart waits for the dead member's session")
    p.add_argument("--prefill-steps", type=int, default=0,
                   help="ticks per symbol sent as bundles before the timed run (4,400 fills every history)")
    p.add_argument("--json", type=Path)
    p.add_argument("--render", type=Path, nargs="+", help="print the docs table of these runs and exit")
    args = p.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # it logs every refused connection
    seconds = args.minutes * 60
    work = Path(tempfile.mkdtemp(prefix="sentinel-soak-"))
    print(f"work dir (broker data, worker logs; not removed): {work}", flush=True)
    config = BrokerConfig(data_dir=work / "kafka", port=free_port(), controller_port=free_port())
    broker = start_broker(config)
    settings = load_settings({})
    prefix = "soak."
    # As compose and a StatefulSet run it: a stable group.instance.id, so a restart is not
    # held until the killed member's session expires.
    static = {} if args.dynamic_membership else {"SENTINEL_GROUP_INSTANCE_ID": "soak-worker-{hostname}"}
    worker = BenchWorker(broker.bootstrap, settings.models_dir, prefix, "soak-worker", work, env=static)
    worker.start().wait_ready()
    url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
    path = PricePath(args.symbols)
    prefill_s = None
    if args.prefill_steps:
        t = time.monotonic()
        print(f"prefill: {args.prefill_steps} ticks per symbol as bundles", flush=True)
        prefill(broker.bootstrap, prefix + topics.TICKS, path, args.prefill_steps)
        while lag(url)[0] != 0:
            time.sleep(2.0)
        prefill_s = round(time.monotonic() - t, 1)
        print(f"prefill processed and committed after {prefill_s} s; the timed run starts", flush=True)
    producer = Producer(broker.bootstrap, prefix + topics.TICKS, args.symbols, args.rate, seconds, path)
    committed_lag = BrokerLag(broker.bootstrap, "soak-worker", prefix + topics.TICKS)
    committed_lag.start()
    producer.start()
    start = time.monotonic()
    kills: list[dict[str, Any]] = []
    rss: list[list[tuple[float, float]]] = [[]]
    state: list[list[tuple[float, float]]] = [[]]  # sentinel_state_bytes, MB
    kills_planned = max(1, int(seconds // args.kill_every))
    broker_restart_at = (kills_planned // 2 + 0.5) * args.kill_every  # half-way between two kills
    broker_restarted = False
    next_kill = args.kill_every
    pending: dict[str, Any] | None = None
    lags: list[tuple[float, float]] = []  # the worker's gauge
    blags: list[tuple[float, float]] = []  # read from the broker (``BrokerLag``): what catch-up is timed on
    last_print = -30.0
    while producer.is_alive():
        now = time.monotonic() - start
        current, state_mb = lag(url)
        rss[-1].append((now, worker_rss_mb(worker)))
        state[-1].append((now, state_mb))
        if worker.proc is not None and worker.proc.poll() is not None:  # what a supervisor does
            print(f"{now:.0f} s: worker exited ({worker.proc.returncode}); restarting it", flush=True)
            kills.append({"at_s": round(now, 1), "kind": f"worker exit {worker.proc.returncode}, restarted"})
            worker.start()
        if current is not None:
            lags.append((round(now, 1), current))
        from_broker = committed_lag.latest
        if from_broker is not None:
            blags.append((round(now, 1), from_broker))
        if now - last_print >= 30:
            print(f"{now:.0f} s: lag {current}, rss {rss[-1][-1][1]:.0f} MB", flush=True)
            last_print = now
        if pending is not None:
            pending = caught_up(pending, now, committed_lag, current)
        if now >= next_kill:
            print(f"{now:.0f} s: kill -9 the worker (lag {current})", flush=True)
            worker.proc.kill()  # type: ignore[union-attr]
            worker.proc.wait()  # type: ignore[union-attr]
            worker.start()
            pending = fault("kill -9", now, blags, lags, args.rate)
            kills.append(pending)
            rss.append([])
            state.append([])
            next_kill += args.kill_every
        if not broker_restarted and now >= broker_restart_at:
            print(f"{now:.0f} s: restarting the broker", flush=True)
            broker.stop()
            time.sleep(3.0)
            broker = start_broker(config)
            broker_restarted = True
            pending = fault("broker restart", now, blags, lags, args.rate)
            # The broker is away from the stop until here; catch-up is also timed from here.
            pending["broker_back_after_s"] = round(time.monotonic() - start - now, 1)
            kills.append(pending)
        time.sleep(1.0)
    steps = producer.sent_steps + args.prefill_steps
    expected = args.symbols * max(0, steps - WINDOW + 1)
    settle = time.monotonic()
    while (lag(url)[0] or 0) > 0 and time.monotonic() - settle < 300:
        time.sleep(2.0)
    committed_lag.stopped.set()
    seen = distinct_forecasts(broker.bootstrap, prefix + topics.FORECASTS, expected, timeout=600)
    usage = worker.usage()
    worker.stop()
    broker.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO_ROOT).stdout.strip()
    slopes = [slope_mb_per_hour([s for s in seg if s[0] - seg[0][0] > 60]) for seg in rss if seg]
    # Every segment is a fresh process whose first minutes include its own warm-up (arenas,
    # client buffers), so also: the RSS each process ended at, and the slope over its second half.
    late = [slope_mb_per_hour(second_half(seg)) for seg in rss if seg]
    # The symbols' histories grow for the whole run (full after ~6,000 ticks each): their
    # state's slope, and RSS minus twice the state (the live copy and the table's stored
    # copy) is what grows besides them.
    state_late = [slope_mb_per_hour(second_half(seg)) for seg in state if seg]
    rest_late = [slope_mb_per_hour(second_half([(t, r - 2 * m) for (t, r), (_, m) in zip(a, b, strict=True)]))
                 for a, b in zip(rss, state, strict=True) if a]
    ends = [round(float(np.median([v for _, v in seg[-10:] if v == v])), 1) for seg in rss if len(seg) >= 10]
    for f in kills:
        f.pop("_committed", None)
        f.pop("_since", None)
    report = {
        "meta": {"command": " ".join(["scripts/soak.py", *sys.argv[1:]]), "commit": commit,
                 "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}},
        "symbols": args.symbols, "rate_ticks_per_s": args.rate,
        "group_instance_id": static.get("SENTINEL_GROUP_INSTANCE_ID"), "seconds": round(seconds),
        "prefill_ticks_per_symbol": args.prefill_steps, "prefill_s": prefill_s,
        "ticks_sent": steps * args.symbols,
        "producer_error": repr(producer.error) if producer.error else None,
        "forecasts_expected": expected, "forecasts_distinct": seen, "forecasts_lost": expected - seen,
        "faults": kills, "lag_measured": "committed lag read from the broker every second",
        "lag_samples": blags[::5], "worker_gauge_samples": lags[::5],
        "rss_mb_last": round(rss[-1][-1][1], 1) if rss[-1] else None,
        "rss_mb_max": round(max((v for seg in rss for _, v in seg if v == v), default=float("nan")), 1),
        "rss_slope_mb_per_hour_between_restarts": [None if s is None else round(s, 1) for s in slopes],
        "rss_slope_mb_per_hour_second_half": [None if s is None else round(s, 1) for s in late],
        "rss_mb_at_end_of_each_process": ends,
        "state_mb_slope_per_hour_second_half": [None if s is None else round(s, 1) for s in state_late],
        "rss_minus_2x_state_slope_mb_per_hour_second_half": [None if s is None else round(s, 1)
                                                              for s in rest_late],
        "state_mb_last": round(state[-1][-1][1], 1) if state[-1] else None,
        "worker_cpu_s_last_process": round(usage["cpu_s_total"], 1),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report["forecasts_lost"] == 0 and producer.error is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
