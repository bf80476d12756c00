"""PriceHandler with real (tiny) ONNX inference, a recording producer and a dict table."""

from __future__ import annotations

import asyncio
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from streaming import topics
from streaming.core.detector import SEVERITIES, DetectorConfig, ResidualDetector
from streaming.core.windows import WINDOW, SymbolState
from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry
from streaming.worker.changelog import AckedChangelog
from streaming.worker.checkpoint import Checkpoints
from streaming.worker.commit_ledger import CommitLedger
from streaming.worker.dead_letters import DeadLetters
from streaming.worker.in_flight import InFlight
from streaming.worker.prices import PriceHandler
from tests.unit.streaming.worker.fakes import (
    FakeEvent,
    FakeTable,
    RecordingSend,
    load_registry,
    make_event,
    new_metrics,
    sample,
    topic,
)

TICKS, FORECASTS, ANOMALIES = topic(topics.TICKS), topic(topics.FORECASTS), topic(topics.ANOMALIES)
DLQ = topic(topics.DEAD_LETTER)
T0, STEP = 1_700_000_000_000, 60_000  # epoch ms, one tick a minute
MAX_BYTES = 512
PARTITIONS = {"AAA": 0, "BBB": 1, "CCC": 2}


@pytest.fixture(scope="module")
def registry(tiny_models_dir: Path) -> ModelRegistry:
    return load_registry(tiny_models_dir)


@pytest.fixture(scope="module")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


def walk(n: int, seed: int = 1, start: float = 100.0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(p) for p in start * np.exp(np.cumsum(rng.normal(0, 0.001, n)))]


def expected_forecast(window: Sequence[float]) -> float:
    """The tiny model: half the mean of the last 5 log-relative prices, back in price units."""
    last = window[-1]
    return last * math.exp(0.5 * float(np.mean([math.log(p / last) for p in window[-5:]])))


@dataclass
class Rig:
    handler: PriceHandler
    send: RecordingSend
    changelog: RecordingSend
    table: FakeTable
    metrics: Metrics
    offsets: dict[int, int] = field(default_factory=dict)

    def event(self, raw: bytes, symbol: str = "AAA") -> FakeEvent:
        partition = PARTITIONS.get(symbol, 0)
        offset = self.offsets.get(partition, 0)
        self.offsets[partition] = offset + 1
        return make_event(raw, topic_name=TICKS, partition=partition, offset=offset, key=symbol.encode())

    def tick(self, symbol: str, i: int, price: float) -> FakeEvent:
        return self.event(orjson.dumps({"symbol": symbol, "ts": T0 + i * STEP, "price": price}), symbol)

    def forecasts(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return [s.json for s in self.send.to(FORECASTS) if symbol is None or s.json["symbol"] == symbol]

    def dead(self) -> list[dict[str, Any]]:
        return [s.json for s in self.send.to(DLQ)]


def rig(registry: ModelRegistry, executor: ThreadPoolExecutor, *, auto_ack: bool = True,
        table: FakeTable | None = None, detector: ResidualDetector | None = None,
        max_bytes: int = MAX_BYTES, interval_s: float = 0.0,
        now: Callable[[], float] = time.monotonic, in_flight: InFlight | None = None,
        stagger: bool = True) -> Rig:
    """``interval_s`` 0: a checkpoint after every batch, so the table shows each batch's state."""
    send, changelog, metrics = RecordingSend(auto_ack), RecordingSend(), new_metrics()
    table = table if table is not None else FakeTable()
    checkpoints = Checkpoints(table, AckedChangelog(table, changelog), CommitLedger(),
                              interval_s=interval_s, now=now, stagger=stagger)
    handler = PriceHandler(table, send, topic, registry, detector or ResidualDetector(), metrics,
                           DeadLetters(send, DLQ, metrics), max_bytes, executor, checkpoints,
                           in_flight=in_flight)
    return Rig(handler, send, changelog, table, metrics)


def run_batches(r: Rig, batches: Sequence[Sequence[FakeEvent]]) -> None:
    async def go() -> None:
        for events in batches:
            await r.handler.handle(events)

    asyncio.run(go())


def chunks(events: list[FakeEvent], size: int) -> list[list[FakeEvent]]:
    return [events[i:i + size] for i in range(0, len(events), size)]


def interleaved(r: Rig, series: dict[str, list[float]]) -> list[FakeEvent]:
    longest = max(len(p) for p in series.values())
    return [r.tick(s, i, prices[i])
            for i in range(longest) for s, prices in series.items() if i < len(prices)]


# --- forecasts ------------------------------------------------------------------------------

def test_forecasts_for_several_symbols_once_the_window_is_full(registry: ModelRegistry,
                                                               executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    series = {"AAA": walk(70, seed=1), "BBB": walk(65, seed=2, start=20.0), "CCC": walk(30, seed=3)}
    batches = chunks(interleaved(r, series), 25)
    run_batches(r, batches)

    assert {s: len(r.forecasts(s)) for s in series} == {"AAA": 70 - WINDOW + 1, "BBB": 65 - WINDOW + 1,
                                                        "CCC": 0}
    assert all(s.key == s.json["symbol"].encode() for s in r.send.to(FORECASTS))
    assert r.send.to(ANOMALIES) == [] and r.send.to(DLQ) == []
    for symbol in ("AAA", "BBB"):
        prices = series[symbol]
        records = r.forecasts(symbol)
        assert [rec["ts"] for rec in records] == [T0 + i * STEP for i in range(WINDOW - 1, len(prices))]
        for rec, i in zip(records, range(WINDOW - 1, len(prices)), strict=True):
            assert set(rec) == {"symbol", "ts", "price", "forecast", "model"}
            assert rec["price"] == prices[i] and rec["model"] == registry.forecaster.ref
            assert rec["forecast"] == pytest.approx(expected_forecast(prices[i - WINDOW + 1:i + 1]), rel=1e-5)

    m = r.metrics
    model = registry.forecaster.manifest.name
    assert sample(m, "sentinel_forecasts_total") == 17
    assert sample(m, "sentinel_messages_total", topic=TICKS, outcome="ok") == 165
    assert sample(m, "sentinel_messages_total", topic=TICKS, outcome="late") == 0
    assert sample(m, "sentinel_symbols_tracked") == 3
    assert sample(m, "sentinel_inference_batch_size_sum", model=model) == 17
    assert sample(m, "sentinel_batch_size_count", agent="prices") == len(batches)
    assert sample(m, "sentinel_batch_size_sum", agent="prices") == 165
    assert sample(m, "sentinel_end_to_end_latency_seconds_count", topic=TICKS) == 17
    # Primed at zero for each tracked symbol, so the first anomaly shows in rate().
    assert m.registry.get_sample_value("sentinel_anomalies_total", {"symbol": "AAA", "severity": "low",
                                                                        "kind": "price"}) == 0


def test_a_bundle_counts_every_tick(registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor, max_bytes=1 << 16)
    prices = walk(WINDOW + 1)
    bundle = {"symbol": "AAA", "ticks": [{"ts": T0 + i * STEP, "price": p} for i, p in enumerate(prices)]}
    run_batches(r, [[r.event(orjson.dumps(bundle))]])
    assert [rec["ts"] for rec in r.forecasts()] == [T0 + (WINDOW - 1) * STEP, T0 + WINDOW * STEP]
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == WINDOW + 1
    assert sample(r.metrics, "sentinel_batch_size_sum", agent="prices") == 1  # one event


def test_late_and_duplicate_ticks_are_counted_not_processed(registry: ModelRegistry,
                                                           executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    prices = walk(5)
    events = [r.tick("AAA", i, p) for i, p in enumerate(prices)]
    run_batches(r, [events, [r.tick("AAA", 4, 1.0), r.tick("AAA", 2, 1.0), r.tick("AAA", 5, 99.0)]])
    state = SymbolState.from_value(r.table.data["AAA"])
    assert state.window == [*prices, 99.0] and state.ticks_seen == 6
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="late") == 2
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == 6


# --- anomalies ------------------------------------------------------------------------------

def test_a_spike_publishes_one_anomaly_with_severity(registry: ModelRegistry,
                                                     executor: ThreadPoolExecutor) -> None:
    detector = ResidualDetector(DetectorConfig())  # the served warm-up (50 residuals)
    r = rig(registry, executor, detector=detector)
    prices = walk(200)
    spike_at = 150
    prices[spike_at] *= math.exp(0.02)  # ~20 sigma of the 0.1 % walk
    run_batches(r, chunks([r.tick("AAA", i, p) for i, p in enumerate(prices)], 40))

    (sent,) = r.send.to(ANOMALIES)
    alert = sent.json
    spike_ts = T0 + spike_at * STEP
    assert sent.key == b"AAA"
    assert alert["alert_id"] == f"AAA:{spike_ts}" and alert["ts"] == spike_ts
    assert alert["price"] == prices[spike_at] and alert["model"] == registry.forecaster.ref
    previous = next(f for f in r.forecasts() if f["ts"] == spike_ts - STEP)
    assert alert["expected"] == previous["forecast"]  # scored against the forecast made one tick before
    assert alert["residual"] == pytest.approx(math.log(prices[spike_at] / previous["forecast"]))
    assert alert["threshold"] == detector.config.threshold
    assert alert["score"] >= detector.config.threshold
    assert alert["severity"] == detector.severity(alert["score"])
    assert alert["severity"] in ("high", "critical")

    m = r.metrics
    assert sample(m, "sentinel_anomalies_total", symbol="AAA", severity=alert["severity"],
                  kind="price") == 1
    assert sum(sample(m, "sentinel_anomalies_total", symbol="AAA", severity=s, kind="price")
               for s in SEVERITIES) == 1
    assert sample(m, "sentinel_last_anomaly_score", symbol="AAA") == alert["score"]
    assert sample(m, "sentinel_last_anomaly_timestamp_seconds", symbol="AAA") == spike_ts / 1000
    # The published forecasts go on as usual around the spike.
    assert len(r.forecasts()) == 200 - WINDOW + 1


# --- invalid input --------------------------------------------------------------------------

INVALID = [
    pytest.param(b"{not json", "invalid_json", id="bad-json"),
    pytest.param(b"\xff\xfe{}", "invalid_utf8", id="bad-utf8"),
    pytest.param(b"[1, 2]", "not_an_object", id="array"),
    pytest.param(orjson.dumps({"symbol": "AAA", "ts": T0}), "missing_field", id="no-price"),
    pytest.param(orjson.dumps({"symbol": "AAA", "ts": T0, "price": 1.0, "bid": 1}), "unknown_field",
                 id="extra-field"),
    pytest.param(orjson.dumps({"symbol": "AAA", "ts": "now", "price": 1.0}), "invalid_type", id="ts-str"),
    pytest.param(orjson.dumps({"symbol": "AAA", "ts": T0, "price": -1.0}), "invalid_value",
                 id="negative-price"),
    pytest.param(orjson.dumps({"symbol": "aaa", "ts": T0, "price": 1.0}), "invalid_value", id="bad-symbol"),
    pytest.param(b'{"symbol": "AAA", "ts": 1, "price": 1.0' + b" " * MAX_BYTES + b"}", "too_large",
                 id="oversized"),
]


@pytest.mark.parametrize(("raw", "reason"), INVALID)
def test_an_invalid_record_is_dead_lettered_and_its_neighbours_processed(
        raw: bytes, reason: str, registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    before, bad, last = r.tick("AAA", 1, 100.0), r.event(raw), r.tick("AAA", 2, 101.0)
    run_batches(r, [[before, bad, last]])

    (record,) = r.dead()
    assert record["reason"] == reason and record["error"].startswith(f"{reason}: ")
    assert (record["source_topic"], record["partition"], record["offset"]) == (TICKS, 0, 1)
    assert record["payload"] == raw.decode("utf-8", errors="replace")
    assert r.send.to(DLQ)[0].key == b"AAA"
    state = SymbolState.from_value(r.table.data["AAA"])
    assert state.window == [100.0, 101.0] and state.last_ts == T0 + 2 * STEP and state.ticks_seen == 2
    assert sample(r.metrics, "sentinel_dead_letters_total", topic=TICKS, reason=reason) == 1
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="invalid") == 1
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == 2


def test_a_batch_of_only_invalid_records_writes_no_state(registry: ModelRegistry,
                                                         executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    run_batches(r, [[r.event(b"nope"), r.event(b"{}")]])
    assert [d["reason"] for d in r.dead()] == ["invalid_json", "missing_field"]
    assert [d["offset"] for d in r.dead()] == [0, 1]
    assert r.table.data == {} and r.changelog.sent == []
    assert r.forecasts() == []
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="invalid") == 2
    assert sample(r.metrics, "sentinel_batch_size_count", agent="prices") == 1


def test_invalid_records_in_a_forecasting_batch(registry: ModelRegistry,
                                                executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    prices = walk(WINDOW + 4)
    events = [r.tick("AAA", i, p) for i, p in enumerate(prices)]
    bad = [r.event(b"{oops"), r.event(b"{}"), r.event(b"x" * (MAX_BYTES + 1))]
    for at, event in zip((10, 40, 62), bad, strict=True):
        events.insert(at, event)
    run_batches(r, chunks(events, 30))
    assert sorted(d["reason"] for d in r.dead()) == ["invalid_json", "missing_field", "too_large"]
    assert len(r.forecasts()) == 5
    assert SymbolState.from_value(r.table.data["AAA"]).window == prices[-WINDOW:]
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == len(prices)


# --- state ----------------------------------------------------------------------------------

def test_state_snapshots_go_through_the_writer_and_read_back(registry: ModelRegistry,
                                                             executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    series = {"AAA": walk(70), "BBB": walk(3, seed=2)}
    batches = chunks(interleaved(r, series), 40)
    run_batches(r, batches)

    # One changelog record per touched symbol and batch, to the partition of the symbol's event.
    log = r.changelog.sent
    keyed = [(orjson.loads(s.key or b""), s.partition) for s in log]
    assert len(batches) == 2 and sorted(keyed[:2]) == [("AAA", 0), ("BBB", 1)] and keyed[2:] == [("AAA", 0)]
    assert all(s.topic == r.table.changelog_name for s in log)
    last_written = {orjson.loads(s.key or b""): s.value for s in log}
    assert r.table.data == last_written

    aaa = SymbolState.from_value(r.table.data["AAA"])
    assert aaa.window == series["AAA"][-WINDOW:] and aaa.ticks_seen == 70
    assert aaa.last_ts == T0 + 69 * STEP
    assert aaa.pending_forecast == r.forecasts("AAA")[-1]["forecast"]
    assert aaa.pending_model == registry.forecaster.ref
    bbb = SymbolState.from_value(r.table.data["BBB"])
    assert bbb.window == series["BBB"] and bbb.pending_forecast is None


def test_a_restarted_handler_resumes_from_the_table(registry: ModelRegistry,
                                                    executor: ThreadPoolExecutor) -> None:
    prices = walk(90)
    straight = rig(registry, executor)
    run_batches(straight, [[straight.tick("AAA", i, p) for i, p in enumerate(prices)]])

    first = rig(registry, executor)
    run_batches(first, [[first.tick("AAA", i, p) for i, p in enumerate(prices[:70])]])
    # A new handler (a restarted worker) sees only the table: the records' bytes.
    table = FakeTable(data={k: bytes(v) for k, v in first.table.data.items()})
    second = rig(registry, executor, table=table)
    run_batches(second, [[second.tick("AAA", i, prices[i]) for i in range(70, 90)]])
    assert first.forecasts() + second.forecasts() == straight.forecasts()
    assert second.table.data == straight.table.data


def test_state_is_written_only_after_outputs_are_acknowledged(registry: ModelRegistry,
                                                              executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor, auto_ack=False)
    prices = walk(WINDOW + 2)
    events = [r.tick("AAA", i, p) for i, p in enumerate(prices)] + [r.event(b"bad")]

    async def go() -> None:
        task = asyncio.create_task(r.handler.handle(events))
        for _ in range(500):  # inference runs in the executor thread
            if len(r.send.sent) == 4:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
        assert len(r.send.to(FORECASTS)) == 3 and len(r.dead()) == 1 and r.send.pending() == 4
        assert not task.done() and r.changelog.sent == [] and r.table.data == {}
        assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == 0
        r.send.ack_all()
        await asyncio.wait_for(task, 5.0)

    asyncio.run(go())
    assert len(r.changelog.sent) == 1 and "AAA" in r.table.data
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == len(prices)


def test_a_failed_output_send_leaves_the_state_unwritten(registry: ModelRegistry,
                                                         executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor, auto_ack=False)
    events = [r.tick("AAA", i, p) for i, p in enumerate(walk(WINDOW))]

    async def go() -> None:
        task = asyncio.create_task(r.handler.handle(events))
        for _ in range(500):
            if r.send.sent:
                break
            await asyncio.sleep(0.005)
        r.send.fail_all(ConnectionError("broker gone"))
        with pytest.raises(ConnectionError):
            await task

    asyncio.run(go())
    assert r.table.data == {} and r.changelog.sent == []


def test_batches_in_flight_complete_in_order_behind_their_acks(registry: ModelRegistry,
                                                               executor: ThreadPoolExecutor) -> None:
    """The worker's default: the agent goes on while outputs await acks; offsets and state wait."""
    r = rig(registry, executor, auto_ack=False, in_flight=InFlight(limit=4))
    h, prices = r.handler, walk(WINDOW + 10)
    ticks = [r.tick("AAA", i, p) for i, p in enumerate(prices)]
    tp = ticks[0].message.tp

    async def go() -> None:
        await asyncio.wait_for(h.handle(ticks[:WINDOW + 5]), 5.0)  # returns before any ack
        await asyncio.wait_for(h.handle(ticks[WINDOW + 5:]), 5.0)
        assert h.in_flight.waiting == 2 and r.send.pending() == 11
        assert h.ledger.committable(tp) is None and r.changelog.sent == [] and h.checkpoints.open == 2
        assert not await h.checkpoint_now()  # never a checkpoint ahead of unacknowledged outputs
        r.send.ack_all()
        await asyncio.wait_for(h.in_flight.drain(), 5.0)
        await h.in_flight.stop()

    asyncio.run(go())
    assert [SymbolState.from_value(s.value).ticks_seen for s in r.changelog.sent] == [WINDOW + 5, WINDOW + 10]
    assert r.handler.ledger.committable(tp) == WINDOW + 10 and r.handler.checkpoints.open == 0
    assert sample(r.metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == len(prices)


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls: list[str] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(fn.__name__)
        return super().submit(fn, *args, **kwargs)


def test_small_batches_run_inline_with_the_same_results(registry: ModelRegistry,
                                                        executor: ThreadPoolExecutor) -> None:
    prices = walk(WINDOW + 20)
    reference = rig(registry, executor)
    run_batches(reference, chunks([reference.tick("AAA", i, p) for i, p in enumerate(prices)], 8))
    counting = CountingExecutor()
    r = rig(registry, counting)
    r.handler.inline_ticks = 8
    events = [r.tick("AAA", i, p) for i, p in enumerate(prices)]
    run_batches(r, chunks(events, 8)[:-1] + [chunks(events, 8)[-1] + [r.tick("AAA", len(prices), 1.0)]])
    counting.shutdown()
    assert r.forecasts()[:len(reference.forecasts())] == reference.forecasts()
    # batches of 8 ran on the loop; the last one (9 ticks) and every checkpoint went off it
    assert counting.calls.count("process_ticks") == 1 and "serialise" in counting.calls


def test_no_batch_runs_inline_while_a_snapshot_is_serialised(registry: ModelRegistry,
                                                             executor: ThreadPoolExecutor) -> None:
    counting = CountingExecutor()
    r = rig(registry, counting)
    r.handler.inline_ticks = 100
    r.handler._snapshotting = 1  # the idle timer's checkpoint is being serialised off the loop
    run_batches(r, [[r.tick("AAA", i, p) for i, p in enumerate(walk(3))]])
    counting.shutdown()
    assert "process_ticks" in counting.calls


def test_live_state_carries_over_between_overlapping_batches(registry: ModelRegistry,
                                                             executor: ThreadPoolExecutor) -> None:
    """Batches prepared before the previous one finished continue from its state, not the table's."""
    prices = walk(80)
    reference = rig(registry, executor)
    run_batches(reference, [[reference.tick("AAA", i, p) for i, p in enumerate(prices)]])

    r = rig(registry, executor)
    ticks = [r.tick("AAA", i, p) for i, p in enumerate(prices)]
    h = r.handler

    async def go() -> None:
        first = await h.prepare(ticks[:50])
        second = await h.prepare(ticks[50:65])  # the table still knows nothing of ``first``
        assert r.table.data == {} and h.checkpoints.open == 2
        await h.finish(first)
        written = SymbolState.from_value(r.table.data["AAA"])
        assert written.ticks_seen == 50  # the checkpoint taken with ``first``, not the live state
        assert h.checkpoints.live["AAA"].ticks_seen == 65
        third = await h.prepare(ticks[65:])  # continues from ``second``, not from the table
        await h.finish(second)
        await h.finish(third)
        assert h.checkpoints.open == 0

    asyncio.run(go())
    assert r.forecasts() == reference.forecasts()
    assert r.table.data == reference.table.data
    assert SymbolState.from_value(r.table.data["AAA"]).ticks_seen == 80
    assert [SymbolState.from_value(s.value).ticks_seen for s in r.changelog.sent] == [50, 65, 80]


def test_the_default_writer_writes_the_table_as_each_symbol_s_last_event(
        registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    """Without an AckedChangelog (exactly-once), Faust's table write runs as the owning event."""
    send, metrics, table = RecordingSend(), new_metrics(), FakeTable()
    handler = PriceHandler(table, send, topic, registry, ResidualDetector(), metrics,
                           DeadLetters(send, DLQ, metrics), MAX_BYTES, executor)
    r = Rig(handler, send, RecordingSend(), table, metrics)
    batch = interleaved(r, {"AAA": walk(3), "BBB": walk(2, seed=2)})  # AAA BBB AAA BBB AAA
    run_batches(r, [batch])
    owners = {key: event for key, _, event in table.set_calls}
    assert owners == {"AAA": batch[4], "BBB": batch[3]}  # not the batch's last event for BBB
    assert owners["BBB"].message.partition == PARTITIONS["BBB"]
    assert SymbolState.from_value(table.get("BBB")).ticks_seen == 2
    assert sample(metrics, "sentinel_messages_total", topic=TICKS, outcome="ok") == 5


# --- records that used to crash the agent ----------------------------------------------------

def test_a_null_value_record_is_dead_lettered(registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    before, tombstone, after = r.tick("AAA", 0, 100.0), r.event(b""), r.tick("AAA", 1, 101.0)
    tombstone.value = tombstone.message.value = None  # type: ignore[assignment]  # what Faust delivers
    run_batches(r, [[before, tombstone, after]])
    assert [(d["offset"], d["reason"]) for d in r.dead()] == [(1, "tombstone")]
    assert SymbolState.from_value(r.table.data["AAA"]).ticks_seen == 2


def test_extreme_but_valid_prices_do_not_crash_the_handler(registry: ModelRegistry,
                                                           executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    events = [r.tick("AAA", i, 1e200) for i in range(WINDOW + 1)] + [r.tick("AAA", WINDOW + 1, 1e-200)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy: overflow in the normalisation
        run_batches(r, [events, [r.tick("AAA", WINDOW + 2, 1.0)]])
    assert SymbolState.from_value(r.table.data["AAA"]).last_ts == T0 + (WINDOW + 2) * STEP
    assert len(r.forecasts()) >= 2  # the records before the bad one were forecast
    (dead,) = r.dead()  # the record whose processing raised, with the exception's one line
    assert dead["reason"] == "processing_error" and dead["error"].startswith("processing_error: ValueError")
    assert sample(r.metrics, "sentinel_processing_errors_total", agent="prices") == 1


# --- record envelope: keys, headers, cardinality ---------------------------------------------

def test_envelope_rules_dead_letter_and_the_neighbours_are_processed(registry: ModelRegistry,
                                                                     executor: ThreadPoolExecutor) -> None:
    r = rig(registry, executor)
    good = r.tick("AAA", 0, 100.0)
    unkeyed = r.tick("AAA", 1, 100.5)
    unkeyed.message.key = None
    bad_key = r.tick("AAA", 2, 100.5)
    bad_key.message.key = b"\xff\xfeAAA"
    other_key = r.tick("AAA", 3, 100.5)
    other_key.message.key = b"BBB"
    with_header = r.tick("AAA", 4, 100.5)
    with_header.message.headers = [("x-debug", b"1")]
    traced = r.tick("AAA", 5, 101.0)
    traced.message.headers = [("traceparent", b"00-abc-def-01")]
    empty = r.event(b"")
    run_batches(r, [[good, unkeyed, bad_key, other_key, with_header, traced, empty]])
    assert [d["reason"] for d in r.dead()] == ["missing_key", "invalid_key", "key_mismatch",
                                               "unexpected_header", "empty"]
    assert SymbolState.from_value(r.table.data["AAA"]).ticks_seen == 2  # good and traced


def test_new_symbols_beyond_the_limit_are_dead_lettered(registry: ModelRegistry,
                                                        executor: ThreadPoolExecutor) -> None:
    send, changelog, metrics = RecordingSend(), RecordingSend(), new_metrics()
    table = FakeTable()
    handler = PriceHandler(table, send, topic, registry, ResidualDetector(), metrics,
                           DeadLetters(send, DLQ, metrics), MAX_BYTES, executor,
                           Checkpoints(table, AckedChangelog(table, changelog), CommitLedger(),
                                       interval_s=0.0), max_symbols=2)
    r = Rig(handler, send, changelog, table, metrics)
    run_batches(r, [[r.tick("AAA", 0, 1.0), r.tick("BBB", 0, 1.0)],
                    [r.tick("CCC", 0, 1.0), r.tick("AAA", 1, 1.0)]])
    assert [(d["reason"], d["offset"]) for d in r.dead()] == [("too_many_symbols", 0)]
    assert sorted(table.data) == ["AAA", "BBB"]
    assert SymbolState.from_value(table.data["AAA"]).ticks_seen == 2


# --- checkpoints and committable offsets ---------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_state_is_checkpointed_by_interval_and_offsets_wait_for_it(registry: ModelRegistry,
                                                                   executor: ThreadPoolExecutor) -> None:
    clock = Clock()
    r = rig(registry, executor, interval_s=1.0, now=clock, stagger=False)
    ledger = r.handler.ledger
    ticks = interleaved(r, {"AAA": walk(70), "BBB": walk(70, seed=2)})
    tp_a = ticks[0].message.tp
    run_batches(r, [ticks[:40], ticks[40:80]])
    assert r.changelog.sent == [] and ledger.committable(tp_a) is None  # outputs sent, state not yet
    clock.t = 1.5
    run_batches(r, [ticks[80:100]])
    assert {orjson.loads(s.key) for s in r.changelog.sent} == {"AAA", "BBB"}
    assert SymbolState.from_value(r.table.data["AAA"]).ticks_seen == 50
    assert ledger.committable(tp_a) == 50  # AAA's 50 ticks sit at offsets 0..49 of partition 0
    run_batches(r, [ticks[100:]])  # not due: nothing written, nothing more committable
    assert len(r.changelog.sent) == 2 and ledger.committable(tp_a) == 50
    assert asyncio.run(r.handler.checkpoint_now())  # idle: what changed goes out
    assert ledger.committable(tp_a) == 70 and SymbolState.from_value(r.table.data["AAA"]).ticks_seen == 70
    assert not asyncio.run(r.handler.checkpoint_now())  # nothing left to write
    assert sample(r.metrics, "sentinel_checkpoints_total") == 2
    stored = {k: len(v) for k, v in r.table.data.items()}
    assert r.handler.checkpoints.state_bytes == sum(stored.values()) > 0  # sentinel_state_bytes
    r.handler.checkpoints.drop([tp_a.partition])  # revoked: its symbols' bytes leave the total
    assert r.handler.checkpoints.state_bytes == stored["BBB"]


def test_staggered_checkpoints_take_turns_and_each_frees_its_own_partition(
        registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    """One partition at a time, ``interval_s / partitions`` apart, each about every ``interval_s``."""
    clock = Clock()
    r = rig(registry, executor, interval_s=1.0, now=clock)
    ledger = r.handler.ledger
    ticks = interleaved(r, {"AAA": walk(70), "BBB": walk(70, seed=2)})
    (first, tp_1), (second, tp_2) = sorted((("AAA", ticks[0].message.tp), ("BBB", ticks[1].message.tp)),
                                           key=lambda item: item[1].partition)  # ties: lower partition
    assert tp_1.partition != tp_2.partition
    run_batches(r, [ticks[:40]])
    clock.t = 1.0
    run_batches(r, [ticks[40:60]])
    assert [orjson.loads(s.key) for s in r.changelog.sent] == [first]
    assert ledger.committable(tp_1) == 30 and ledger.committable(tp_2) is None
    clock.t = 1.3
    run_batches(r, [ticks[60:80]])  # the other partition's turn comes interval / 2 later
    assert len(r.changelog.sent) == 1 and ledger.committable(tp_2) is None
    clock.t = 1.5
    run_batches(r, [ticks[80:100]])
    assert [orjson.loads(s.key) for s in r.changelog.sent] == [first, second]
    assert ledger.committable(tp_2) == 50 and ledger.committable(tp_1) == 30
    assert SymbolState.from_value(r.table.data[second]).ticks_seen == 50
    clock.t = 2.0
    run_batches(r, [ticks[100:110]])  # the first again: its own interval has passed
    assert ledger.committable(tp_1) == 55 and SymbolState.from_value(r.table.data[first]).ticks_seen == 55
    assert asyncio.run(r.handler.checkpoint_now())  # idle or hand-over: every partition at once
    assert ledger.committable(tp_1) == 55 and ledger.committable(tp_2) == 55
    run_batches(r, [ticks[110:]])  # not due: both partitions moved, neither is durable further
    assert ledger.committable(tp_1) == 55 and ledger.committable(tp_2) == 55


def test_a_restart_from_the_checkpoint_and_committed_offsets_rebuilds_every_window(
        registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    """The recovery contract: replay from the committed offset against the checkpoint = no restart."""
    series = {"AAA": walk(120), "BBB": walk(110, seed=2)}
    reference = rig(registry, executor)
    run_batches(reference, chunks(interleaved(reference, series), 17))

    clock = Clock()
    first = rig(registry, executor, interval_s=1.0, now=clock)
    ticks = interleaved(first, series)
    for i, batch in enumerate(chunks(ticks, 17)[:9]):  # then a crash: later batches never ran
        clock.t = i * 0.4
        run_batches(first, [batch])
    committed = {tp.partition: first.handler.ledger.committable(tp) or 0
                 for tp in {e.message.tp for e in ticks}}
    restarted = rig(registry, executor, table=FakeTable(data=dict(first.table.data)))
    replay = [e for e in ticks if e.message.offset >= committed[e.message.partition]]
    run_batches(restarted, chunks(replay, 17))

    survived = {(f["symbol"], f["ts"]): f["forecast"] for f in first.forecasts() + restarted.forecasts()}
    assert survived == {(f["symbol"], f["ts"]): f["forecast"] for f in reference.forecasts()}
    assert restarted.table.data == reference.table.data


def test_forecasts_can_be_kept_off_the_topic(registry: ModelRegistry, executor: ThreadPoolExecutor) -> None:
    send, changelog, metrics, table = RecordingSend(), RecordingSend(), new_metrics(), FakeTable()
    handler = PriceHandler(table, send, topic, registry, ResidualDetector(DetectorConfig(warmup=5)), metrics,
                           DeadLetters(send, DLQ, metrics), MAX_BYTES, executor, publish_forecasts=False)
    r = Rig(handler, send, changelog, table, metrics)
    prices = walk(140)
    prices[120] *= 1.5
    run_batches(r, [[r.tick("AAA", i, p) for i, p in enumerate(prices)]])
    assert r.send.to(FORECASTS) == [] and len(r.send.to(ANOMALIES)) >= 1
    assert sample(metrics, "sentinel_forecasts_total") == 140 - WINDOW + 1


def test_a_damaged_state_record_starts_its_symbol_afresh(registry: ModelRegistry,
                                                         executor: ThreadPoolExecutor) -> None:
    table = FakeTable(data={"AAA": b"SST2 truncated", "BBB": SymbolState().to_bytes()})
    r = rig(registry, executor, table=table)
    run_batches(r, [[r.tick("AAA", i, 100.0 + i) for i in range(3)]])
    assert SymbolState.from_value(r.table.data["AAA"]).ticks_seen == 3
