"""Producers: price replay, synthetic labelled streams and feedback replay.

Ticks are keyed by symbol so each symbol stays ordered in one partition.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streaming import topics
from streaming.core.schemas import Feedback, Tick
from streaming.kafka.admin import client_kwargs, ensure_topics
from streaming.settings import Settings

logger = logging.getLogger(__name__)


def tick_payload(tick: Tick) -> bytes:
    body: dict[str, Any] = {"symbol": tick.symbol, "ts": tick.ts, "price": tick.price}
    if tick.volume is not None:
        body["volume"] = tick.volume
    return orjson.dumps(body)


def bundle_payload(ticks: list[Tick]) -> bytes:
    items = [{"ts": t.ts, "price": t.price} | ({"volume": t.volume} if t.volume is not None else {})
             for t in ticks]
    return orjson.dumps({"symbol": ticks[0].symbol, "ticks": items})


def feedback_payload(msg: Feedback) -> bytes:
    return orjson.dumps({k: v for k, v in asdict(msg).items() if v is not None})


class Pacer:
    """Keeps an average rate (messages/s), or replays the data's own clock ``speed`` times
    faster; with neither, sends as fast as the broker takes them.

    ``keep_gaps`` (rate mode with re-stamped ticks): a jump in the data clock much larger
    than its usual step (a market's overnight or weekend close) becomes a short pause,
    ``GAP_PAUSE_STEPS`` times the wall time of one usual step. Without it the re-stamped
    stream is evenly spaced, the detector cannot tell a session open from any other tick,
    and every open looks like an anomaly on every symbol at once.
    """

    GAP_RATIO = 10.0  # a data-clock step this many times the usual one is a gap
    GAP_PAUSE_STEPS = 15.0  # the detector sees a gap at 10x its usual per-symbol step

    def __init__(self, rate: float = 0.0, speed: float = 0.0, keep_gaps: bool = False) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.speed = speed
        self.keep_gaps = keep_gaps
        self.start = self.next_at = time.monotonic()
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.usual_step: float | None = None  # EW mean of ordinary data-clock steps (ms)
        self.msgs_per_step: float | None = None  # EW mean of messages between steps (one per symbol)
        self.since_step = 0
        self.gaps = 0

    async def wait(self, ts: int) -> None:
        if self.speed > 0:
            self.first_ts = ts if self.first_ts is None else self.first_ts
            due = self.start + (ts - self.first_ts) / 1000 / self.speed
        elif self.interval:
            pause = self.gap_pause(ts) if self.keep_gaps else 0.0
            if pause:  # a close is a real pause even when sending runs behind (a busy machine)
                self.next_at = max(self.next_at, time.monotonic())
            self.next_at += self.interval + pause
            due = self.next_at
        else:
            return
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def gap_pause(self, ts: int) -> float:
        """Seconds to pause before the message with data time ``ts`` (0 unless it opens a gap)."""
        self.since_step += 1
        last, self.last_ts = self.last_ts, ts if self.last_ts is None else max(self.last_ts, ts)
        if last is None or ts <= last:
            return 0.0
        step, msgs, self.since_step = ts - last, self.since_step - 1, 1
        usual, per_step = self.usual_step, self.msgs_per_step
        if usual is not None and per_step is not None and step > self.GAP_RATIO * usual:
            self.gaps += 1
            return self.GAP_PAUSE_STEPS * per_step * self.interval
        self.usual_step = step if self.usual_step is None else 0.9 * self.usual_step + 0.1 * step
        self.msgs_per_step = msgs if self.msgs_per_step is None else 0.9 * self.msgs_per_step + 0.1 * msgs
        return 0.0


async def start_producer(settings: Settings, **extra: Any) -> AIOKafkaProducer:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**client_kwargs(settings), linger_ms=5, acks="all", **extra)
    await producer.start()
    return producer


# (key, data-time ts used for pacing, value built at send time so a rebased ts is "now")
Message = tuple[bytes, int, Callable[[], bytes]]


def now_ms() -> int:
    return int(time.time() * 1000)


async def send_all(settings: Settings, topic: str, items: Iterable[Message],
                   pacer: Pacer | None = None, progress: Any = None) -> int:
    """Send messages paced by ``pacer``; waits for every delivery before returning."""
    producer = await start_producer(settings)
    pacer, sent, pending = pacer or Pacer(), 0, []
    try:
        for key, ts, build in items:
            await pacer.wait(ts)
            pending.append(await producer.send(settings.topic(topic), value=build(), key=key))
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
            if progress is not None:
                progress(sent)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


class Rebaser:
    """Re-stamps replayed ticks with the wall clock (strictly increasing per symbol), so
    end-to-end latency and alert times are real; ``keep=True`` keeps data time."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.last: dict[str, int] = {}

    def stamp(self, ticks: list[Tick]) -> list[Tick]:
        if self.keep:
            return ticks
        symbol = ticks[0].symbol
        base = max(now_ms() - len(ticks) + 1, self.last.get(symbol, -1) + 1)
        out = [replace(t, ts=base + i) for i, t in enumerate(ticks)]
        self.last[symbol] = out[-1].ts
        return out


def tick_messages(ticks: Iterable[Tick], bundle: int = 1, keep_ts: bool = True) -> Iterator[Message]:
    """Single-tick messages, or bundles of up to ``bundle`` consecutive ticks per symbol."""
    rebase = Rebaser(keep_ts)
    if bundle <= 1:
        for t in ticks:
            yield t.symbol.encode(), t.ts, partial(lambda x: tick_payload(rebase.stamp([x])[0]), t)
        return
    buffers: dict[str, list[Tick]] = {}
    for t in ticks:
        buf = buffers.setdefault(t.symbol, [])
        buf.append(t)
        if len(buf) >= bundle:
            yield t.symbol.encode(), t.ts, partial(lambda b: bundle_payload(rebase.stamp(b)), buf)
            buffers[t.symbol] = []
    for symbol, buf in buffers.items():
        if buf:
            yield symbol.encode(), buf[-1].ts, partial(lambda b: bundle_payload(rebase.stamp(b)), buf)


def feedback_messages(messages: Iterable[Feedback], keep_ts: bool = False) -> Iterator[Message]:
    for m in messages:
        yield m.id.encode(), m.ts, partial(
            lambda x: feedback_payload(x if keep_ts else replace(x, ts=now_ms())), m)


async def produce_ticks(settings: Settings, ticks: Iterable[Tick], rate: float = 0.0,
                        bundle: int = 1, speed: float = 0.0, keep_ts: bool = True,
                        progress: Any = None) -> int:
    # Re-stamped ticks keep the data's session gaps as pauses (see Pacer).
    return await send_all(settings, topics.TICKS, tick_messages(ticks, bundle, keep_ts),
                          Pacer(rate, speed, keep_gaps=not keep_ts), progress)


async def produce_feedback(settings: Settings, messages: Iterable[Feedback], rate: float = 0.0,
                           keep_ts: bool = False, progress: Any = None) -> int:
    return await send_all(settings, topics.FEEDBACK, feedback_messages(messages, keep_ts), Pacer(rate),
                          progress)


def write_labels(path: Path, windows: dict[str, list[list[object]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(windows, indent=1, sort_keys=True), encoding="utf-8")
