"""The price agent: decode ticks -> windows, forecast, detector (off the loop) -> publish -> checkpoint.

Invalid input never raises out of here: it goes to the dead-letter topic with its
reason and a counter. ``prepare`` does no I/O but the executor, ``finish`` publishes;
output sends of a batch are awaited before its offsets count as finished, and they are
committed only behind an acknowledged checkpoint (``checkpoint.py``), so a crash can
duplicate results but never lose them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from faust.types import EventT, TableT

from streaming import topics
from streaming.core.detector import ResidualDetector
from streaming.core.schemas import DEFAULT_ALLOWED_HEADERS, Tick, check_envelope, check_tick_key, decode_ticks
from streaming.core.windows import SymbolState
from streaming.errors import InvalidMessage, one_line
from streaming.metrics import Metrics
from streaming.serving.inference import Forecaster
from streaming.serving.model_registry import ModelRegistry
from streaming.serving.pipeline import PriceResult, Record, process_ticks
from streaming.worker.changelog import FaustChangelog
from streaming.worker.checkpoint import Checkpoints, Snapshot, serialise
from streaming.worker.commit_ledger import CommitLedger, highest_offsets
from streaming.worker.dead_letters import DeadLetters, Invalid, Send
from streaming.worker.in_flight import InFlight

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PriceBatch:
    """What ``prepare`` hands to ``finish``: outputs and maybe a checkpoint, nothing sent yet."""

    seq: int
    started: float
    size: int
    invalid: list[Invalid] = field(default_factory=list)
    result: PriceResult | None = None
    owner: dict[str, EventT] = field(default_factory=dict)
    offsets: dict[Any, int] = field(default_factory=dict)  # highest offset per partition
    checkpoint: tuple[Snapshot, dict[int, int]] | None = None  # states to write after the outputs, versions


def _one_by_one(decoded: list[tuple[EventT, list[Tick]]], states: dict[str, SymbolState],
                forecaster: Forecaster, detector: ResidualDetector
                ) -> tuple[PriceResult, list[tuple[EventT, InvalidMessage]]]:
    """The retry after a failed batch: each record alone; a failure leaves its symbol's state as it was."""
    total = PriceResult()
    failed: list[tuple[EventT, InvalidMessage]] = []
    for event, bundle in decoded:
        symbol = bundle[0].symbol
        before = states[symbol].copy()
        try:
            part = process_ticks(bundle, states, forecaster, detector)
        except Exception as exc:
            states[symbol] = before
            failed.append((event, InvalidMessage("processing_error", one_line(exc))))
            continue
        total.forecasts += part.forecasts
        total.anomalies += part.anomalies
        total.accepted += part.accepted
        total.late += part.late
        total.touched |= part.touched
        total.inference_rows += part.inference_rows
    return total, failed


class PriceHandler:
    """``prepare`` (decode, state, inference, scoring) then ``finish`` (publish, acks, checkpoint).

    States live in ``Checkpoints``; the next batch may be prepared while this one finishes
    (``BatchPipe``) and continues from the live states.
    """

    def __init__(self, table: TableT, send: Send, settings_topic: Callable[[str], str],
                 models: ModelRegistry, detector: ResidualDetector, metrics: Metrics,
                 dead_letters: DeadLetters, max_bytes: int, executor: ThreadPoolExecutor,
                 checkpoints: Checkpoints | None = None, *,
                 max_symbols: int = 10_000,
                 allowed_headers: frozenset[str] = DEFAULT_ALLOWED_HEADERS,
                 publish_forecasts: bool = True, in_flight: InFlight | None = None,
                 inline_ticks: int = 0) -> None:
        self.table, self.send, self.models, self.detector = table, send, models, detector
        self.in_flight = in_flight or InFlight(limit=0)  # 0: each batch completes inside finish
        self.publish_forecasts = publish_forecasts
        self.max_symbols, self.allowed_headers = max_symbols, allowed_headers
        self.checkpoints = checkpoints or Checkpoints(table, FaustChangelog(table), CommitLedger(),
                                                      interval_s=0.0)
        self.ledger = self.checkpoints.ledger
        self.metrics, self.dead_letters, self.max_bytes = metrics, dead_letters, max_bytes
        self.executor = executor
        # Batches of up to this many ticks are processed on the event loop: for a handful of
        # ticks the executor's hand-off (and the wait for the loop to resume) cost more than
        # the work (docs/benchmarks.md). Never while a snapshot is serialised off the loop.
        self.inline_ticks = inline_ticks
        self._snapshotting = 0
        self.forecast_topic = settings_topic(topics.FORECASTS)
        self.anomaly_topic = settings_topic(topics.ANOMALIES)
        self.source_topic = settings_topic(topics.TICKS)
        self.symbols: set[str] = set()
        self._seq = 0

    async def handle(self, events: Sequence[EventT]) -> None:
        """Both stages in one call (tests, exactly-once mode)."""
        await self.finish(await self.prepare(events))

    async def prepare(self, events: Sequence[EventT]) -> PriceBatch:
        batch = PriceBatch(seq=self._seq, started=time.perf_counter(), size=len(events))
        self._seq += 1
        batch.offsets = highest_offsets(events)
        self.checkpoints.open += 1
        decoded = self._decode(events, batch)
        if not decoded:
            return batch
        ticks = [tick for _, bundle in decoded for tick in bundle]
        store = self.checkpoints
        states = {s: store.state(s) for s in batch.owner}
        undo = {s: state.copy() for s, state in states.items()}
        forecaster = self.models.forecaster  # read once: the whole batch sees one version
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            if len(ticks) <= self.inline_ticks and not self._snapshotting:
                result = process_ticks(ticks, states, forecaster, self.detector)
            else:
                result = await loop.run_in_executor(self.executor, process_ticks, ticks, states, forecaster,
                                                    self.detector)
        except Exception as exc:  # a bug or a model failure: find the records that cause it
            logger.warning("price batch of %d records failed (%s); retrying record by record",
                           len(decoded), one_line(exc))
            store.restore(undo)
            states = {s: store.live[s] for s in batch.owner}
            result, failed = await loop.run_in_executor(self.executor, _one_by_one, decoded, states,
                                                        forecaster, self.detector)
            store.restore({s: states[s] for s in batch.owner})
            for event, error in failed:
                self.metrics.errors.labels("prices").inc()
                batch.invalid.append(Invalid(event, error))
        batch.result = result
        if result.inference_rows:
            model = forecaster.manifest.name
            self.metrics.inference_seconds.labels(model).observe(time.perf_counter() - t0)
            self.metrics.inference_batch.labels(model).observe(result.inference_rows)
        store.touched(result.touched, batch.owner, result.accepted)
        if store.due():
            items, versions = store.take()
            batch.checkpoint = (await self._serialise(items), versions)
        return batch

    def _decode(self, events: Sequence[EventT], batch: PriceBatch) -> list[tuple[EventT, list[Tick]]]:
        """Valid records with their ticks; every other record joins ``batch.invalid`` with its reason."""
        decoded: list[tuple[EventT, list[Tick]]] = []
        for event in events:
            msg = event.message
            try:
                key = check_envelope(msg.value, msg.key, getattr(msg, "headers", None), self.allowed_headers)
                bundle = decode_ticks(bytes(msg.value or b""), self.max_bytes)
                symbol = bundle[0].symbol
                check_tick_key(key, symbol)
                if symbol not in batch.owner and self._is_new(symbol) and self._known() >= self.max_symbols:
                    raise InvalidMessage("too_many_symbols", f"{symbol}: this worker already tracks "
                                         f"{self.max_symbols} symbols (SENTINEL_MAX_SYMBOLS)")
            except InvalidMessage as exc:
                batch.invalid.append(Invalid(event, exc))
                continue
            decoded.append((event, bundle))
            batch.owner[symbol] = event
        return decoded

    def _is_new(self, symbol: str) -> bool:
        return (symbol not in self.symbols and symbol not in self.checkpoints.live
                and self.table.get(symbol) is None)

    def _known(self) -> int:
        return max(len(self.symbols), len(getattr(self.table, "data", ()) or ()))

    async def finish(self, batch: PriceBatch) -> None:
        """Send the batch's outputs; ``_complete`` runs once they are acknowledged (``InFlight``)."""
        pending = [await self.dead_letters.publish(bad.event, bad.error) for bad in batch.invalid]
        result = batch.result
        if result is not None:
            pending.extend(await self._publish(result.forecasts, result.anomalies))
        await self.in_flight.add(pending, partial(self._complete, batch))

    async def _complete(self, batch: PriceBatch) -> None:
        # Outputs are acknowledged by the broker before their offsets count as finished; they
        # become committable once a checkpoint holding the state they left is acknowledged.
        store = self.checkpoints
        self.ledger.finished(batch.offsets)
        mark = self.ledger.mark()
        if batch.checkpoint is not None:
            await self._write_checkpoint(*batch.checkpoint, mark)
        else:
            store.settled(mark)
        store.open -= 1
        if batch.result is not None:
            self._settle(batch.result)
        self.metrics.batch_seconds.labels("prices").observe(time.perf_counter() - batch.started)
        self.metrics.batch_size.labels("prices").observe(batch.size)

    async def checkpoint_now(self) -> bool:
        """Checkpoint what changed, unless a batch has moved states whose outputs are not acknowledged.

        For quiet periods, rebalances and stops; busy agents checkpoint from their batches.
        """
        store = self.checkpoints
        if store.open or not (store.dirty or self.ledger.pending()):
            return False
        mark = self.ledger.mark()
        items, versions = store.take(everything=True)
        await self._write_checkpoint(await self._serialise(items), versions, mark)
        return True

    async def _write_checkpoint(self, snapshot: Snapshot, versions: dict[int, int],
                                mark: dict[Any, int]) -> None:
        t0 = time.perf_counter()
        await self.checkpoints.write(snapshot, versions, mark)
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - t0)
        self.metrics.checkpoint_symbols.observe(len(snapshot))
        self.metrics.checkpoints.inc()

    async def _serialise(self, items: list[tuple[str, SymbolState]]) -> Snapshot:
        """Off the loop; the states must not move meanwhile, so no batch runs inline until it is done."""
        self._snapshotting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, serialise, items)
        finally:
            self._snapshotting -= 1

    def _settle(self, result: PriceResult) -> None:
        for symbol in result.touched - self.symbols:
            self.metrics.prime_symbol(symbol)
        self.symbols.update(result.touched)
        self.metrics.symbols_tracked.set(len(self.symbols))
        self.metrics.messages.labels(self.source_topic, "ok").inc(result.accepted)
        if result.late:
            self.metrics.messages.labels(self.source_topic, "late").inc(result.late)

    async def _publish(self, forecasts: list[Record], anomalies: list[Record]) -> list[Any]:
        futures = []
        send, topic = self.send, self.forecast_topic
        for rec in forecasts if self.publish_forecasts else ():  # off: users who only want alerts
            futures.append(await send(topic, rec["symbol"].encode(), orjson.dumps(rec)))
        for rec in anomalies:
            futures.append(await send(self.anomaly_topic, rec["symbol"].encode(), orjson.dumps(rec)))
            self.metrics.anomalies.labels(rec["symbol"], rec["severity"], rec["kind"]).inc()
            self.metrics.last_anomaly_score.labels(rec["symbol"]).set(rec["score"])
            self.metrics.last_anomaly_time.labels(rec["symbol"]).set(rec["ts"] / 1000)
        self.metrics.forecasts.inc(len(forecasts))
        if forecasts:
            latency = self.metrics.end_to_end.labels(self.source_topic)
            now = time.time()
            for rec in forecasts:
                latency.observe(max(0.0, now - rec["ts"] / 1000))
        return futures
