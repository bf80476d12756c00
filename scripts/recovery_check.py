"""How long a restarted worker takes to read its symbol state back from the changelog.

A dev broker on free ports; the worker's changelog topic (compacted, but with segments that
do not roll during the check, so every record written is read back) filled in steps up to
each of ``--versions`` checkpoints of ``--symbols`` symbols with detector histories; after
each step a worker is started and its log read for start, group joined, state restored and
ready. The rate it reads at is what bounds the uncleaned tail a restart may read
(``streaming.kafka.admin.CHANGELOG_CONFIG``). Not in CI.

    PYTHONPATH=. .venv/bin/python scripts/recovery_check.py --json docs/results/recovery.json
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from run_meta import emit, run_meta  # noqa: E402
from state_codec_check import full_states  # noqa: E402

from streaming.bench.runner import BenchWorker  # noqa: E402
from streaming.kafka.admin import CHANGELOG_CONFIG, changelog_topic  # noqa: E402
from streaming.kafka.broker import BrokerConfig, start_broker  # noqa: E402
from streaming.settings import load_settings  # noqa: E402
from streaming.tools.processes import free_port  # noqa: E402
from streaming.worker.app import TABLE_NAME  # noqa: E402

STAMP = re.compile(r"^\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")
EVENTS = {"start": "[^Worker]: Starting", "joined": "Joined group", "restoring": "Restoring state",
          "restored": "Recovery complete", "ready": "[^Worker]: Ready"}


def fill(bootstrap: str, topic: str, symbols: int, versions: int, seeds: list[Any]) -> dict[str, float]:
    async def run() -> float:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1,
                                    max_request_size=4 * 2**20, max_batch_size=2**20)
        await producer.start()
        total = 0
        try:
            for _ in range(versions):
                futures = []
                for s in range(symbols):
                    value = seeds[s % len(seeds)].to_bytes()
                    total += len(value)
                    futures.append(await producer.send(topic, key=orjson.dumps(f"S{s:05d}"), value=value))
                await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return total / 2**20
    started = time.monotonic()
    mb = asyncio.run(run())
    return {"records": symbols * versions, "mb": round(mb, 1),
            "write_s": round(time.monotonic() - started, 1)}


async def create_uncleaned(settings: Any, topic: str) -> None:
    """The worker's changelog settings, except that segments never roll during the check."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        cfg = {**CHANGELOG_CONFIG, "segment.ms": str(3_600_000), "segment.bytes": str(2**30)}
        await admin.create_topics([NewTopic(topic, settings.partitions, 1, topic_configs=cfg)])
    finally:
        await admin.close()


def timeline(log: str) -> dict[str, float]:
    seen: dict[str, datetime] = {}
    for line in log.splitlines():
        for name, marker in EVENTS.items():
            m = STAMP.match(line)
            if marker in line and m and name not in seen:
                seen[name] = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
    t0 = seen.get("start")
    return {k: round((v - t0).total_seconds(), 2) for k, v in seen.items()} if t0 else {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbols", type=int, default=1000)
    p.add_argument("--versions", default="5,20,40", help="checkpoints per symbol in the changelog")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sentinel-recovery-"))
    config = BrokerConfig(data_dir=work / "kafka", port=free_port(), controller_port=free_port())
    broker = start_broker(config)
    runs: list[dict[str, Any]] = []
    seeds = list(full_states(8, 6000).values())  # full histories: ~18.6 KB per record
    try:
        app_id = "recovery-check"
        settings = load_settings({}, kafka_bootstrap=broker.bootstrap, topic_prefix="rc.", app_id=app_id)
        topic = changelog_topic(settings, TABLE_NAME)
        asyncio.run(create_uncleaned(settings, topic))
        written = {"records": 0, "mb": 0.0}
        for total in (int(v) for v in args.versions.split(",")):
            step = fill(broker.bootstrap, topic, args.symbols, total - written["records"] // args.symbols,
                        seeds)
            written = {"records": written["records"] + step["records"], "mb": written["mb"] + step["mb"]}
            worker = BenchWorker(broker.bootstrap, REPO / "models", "rc.", app_id, work)
            worker.start()
            deadline = time.monotonic() + 600
            while "[^Worker]: Ready" not in worker.log_path.read_text(errors="replace"):
                if time.monotonic() > deadline or (worker.proc and worker.proc.poll() is not None):
                    raise RuntimeError(f"worker not ready: {worker.log_path}")
                time.sleep(0.5)
            worker.stop()
            t = timeline(worker.log_path.read_text(errors="replace"))
            restore = t.get("restored", 0) - t.get("restoring", 0)
            runs.append({"versions": total, "records": written["records"], "mb": round(written["mb"], 1),
                         **t, "restore_s": round(restore, 2),
                         "records_per_s": round(written["records"] / restore) if restore > 0 else None,
                         "mb_per_s": round(written["mb"] / restore, 1) if restore > 0 else None})
            print(runs[-1], flush=True)
            worker.log_path.rename(worker.log_path.with_suffix(f".{total}.log"))
    finally:
        broker.stop()
    report = {"meta": run_meta("scripts/recovery_check.py", sys.argv[1:]),
              "symbols": args.symbols, "record_bytes": len(seeds[0].to_bytes()), "runs": runs}
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
