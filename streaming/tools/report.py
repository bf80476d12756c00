"""``sentinel report``: a static HTML page with charts of what the worker saw and said.

It reads the forecast and alert topics from the beginning (bounded by ``--timeout``: a
report of a live stream stops at the offsets that existed when it started) or JSON-lines
files (``sentinel alerts tail --json`` output, or records dumped from the topics), and
writes one self-contained file (``streaming.tools.report_html``) a person can open anywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streaming import topics
from streaming.errors import ConfigError
from streaming.kafka.admin import client_kwargs, ensure_topics
from streaming.settings import Settings
from streaming.tools.report_html import ReportData, build_report

REPORT_TOPICS = (topics.FORECASTS, topics.ANOMALIES, topics.ESCALATIONS)


def classify(records: Iterable[dict[str, Any]], source: str = "") -> ReportData:
    """Sort records into forecasts, price alerts and escalations by their fields; drop repeats
    (delivery is at least once) and anything else (sentiment, dead letters, volume alerts)."""
    data, seen = ReportData(source=source), set[tuple[Any, ...]]()
    key: tuple[Any, ...]
    for r in records:
        if not isinstance(r, dict):
            continue
        if "forecast" in r and "symbol" in r:
            key, bucket = ("f", r["symbol"], r["ts"]), data.forecasts
        elif "severity" in r and r.get("kind", "price") == "price":
            key, bucket = ("a", r["alert_id"]), data.anomalies
        elif "priority" in r:
            key, bucket = ("e", r["alert_id"]), data.escalations
        else:
            continue
        if key not in seen:
            seen.add(key)
            bucket.append(r)
    return data


def read_files(paths: list[Path]) -> ReportData:
    """JSON lines (blank lines and non-JSON lines, e.g. log lines mixed in, are skipped)."""
    records = []
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"report input {path} does not exist")
        for line in path.read_bytes().splitlines():
            if line.strip().startswith(b"{"):
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
    return classify(records, ", ".join(str(p) for p in paths))


async def read_kafka(settings: Settings, timeout_s: float = 30.0) -> ReportData:
    """Every record of the report topics up to the end offsets seen at the start."""
    await ensure_topics(settings)
    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        parts = [TopicPartition(settings.topic(t), p) for t in REPORT_TOPICS
                 for p in sorted(await _partitions(consumer, settings.topic(t)))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = {tp: off for tp, off in (await consumer.end_offsets(parts)).items() if off > 0}
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for tp, batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                records.extend(orjson.loads(m.value) for m in batch if m.value and m.offset < ends.get(tp, 0))
            ends = {tp: off for tp, off in ends.items() if await consumer.position(tp) < off}
    finally:
        await consumer.stop()
    return classify(records, f"topics {', '.join(settings.topic(t) for t in REPORT_TOPICS)} "
                             f"on {settings.kafka_bootstrap}")


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(20):  # metadata for a topic just created may take a moment
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
        await asyncio.sleep(0.1)
    return set()


def write_report(out: Path, data: ReportData, max_symbols: int = 12) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(data, max_symbols=max_symbols), encoding="utf-8")
    return out


def run_report(settings: Settings, out: Path, files: list[Path], timeout_s: float, max_symbols: int) -> int:
    data = read_files(files) if files else asyncio.run(read_kafka(settings, timeout_s))
    path = write_report(out, data, max_symbols)
    print(f"wrote {path}: {len({r['symbol'] for r in data.forecasts})} symbols, "
          f"{len(data.forecasts):,} forecasts, {len(data.anomalies)} price alerts, "
          f"{len(data.escalations)} escalations from {data.source}; open {path.resolve().as_uri()}")
    return 0
