"""BatchIntake: the offset guard applied to real Faust messages with a fake consumer.

The fake consumer provides exactly the Faust internals that ``consumer_control`` touches:
``consumer._thread._ensure_consumer().committed`` (a coroutine, as aiokafka's), the
thread's ``call_thread`` and ``seek``, ``consumer.earliest_offsets`` and ``consumer._read_offset``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from faust.types import TP

from streaming.worker import offset_guard
from streaming.worker.intake import BatchIntake
from tests.unit.streaming.worker.fakes import FakeConsumer, FakeEvent, make_event, new_metrics, sample

TOPIC = "test.prices.ticks"
P0, P1 = TP(TOPIC, 0), TP(TOPIC, 1)


def events(numbers: Sequence[int], partition: int = 0, generation: int = 1) -> list[FakeEvent]:
    return [make_event(b"{}", topic_name=TOPIC, partition=partition, offset=o, generation_id=generation)
            for o in numbers]


def offsets(admitted: Sequence[FakeEvent]) -> list[int]:
    return [e.message.offset for e in admitted]


def intake_for(consumer: FakeConsumer) -> BatchIntake:
    return BatchIntake(Handler(), consumer, new_metrics(), max_batch=100, within_s=0.01)


def admit(intake: BatchIntake, batch: Sequence[FakeEvent]) -> list[FakeEvent]:
    return asyncio.run(intake.admit(batch))  # type: ignore[arg-type]


def test_events_in_order_from_the_committed_offset_are_admitted() -> None:
    consumer = FakeConsumer({P0: 100})
    intake = intake_for(consumer)
    batch = events(range(100, 105))
    assert offsets(admit(intake, batch)) == [100, 101, 102, 103, 104]
    assert offsets(admit(intake, events(range(105, 108)))) == [105, 106, 107]
    assert consumer._thread.calls == [("committed", (P0,))]  # looked up once per generation
    assert consumer._thread.seeks == [] and consumer._read_offset == {}
    assert all(e.message.refcount == 0 for e in batch)
    assert sample(intake.metrics, "sentinel_offset_rewinds_total", topic=TOPIC) == 0


def test_a_gap_holds_later_events_and_rewinds_once() -> None:
    consumer = FakeConsumer({P0: 100})
    intake = intake_for(consumer)
    batch = events([100, 101, 104, 105])
    assert offsets(admit(intake, batch)) == [100, 101]
    assert [e.message.refcount for e in batch] == [0, 0, 1, 1]  # held: never acknowledged
    assert consumer._thread.seeks == [(P0, 102)]  # one seek per partition and batch
    assert ("seek", (P0, 102)) in consumer._thread.calls  # through the consumer thread
    assert consumer._read_offset == {P0: 102}
    assert sample(intake.metrics, "sentinel_offset_rewinds_total", topic=TOPIC) == 1

    # The re-read delivers the missing offsets and the held ones again.
    assert offsets(admit(intake, events(range(102, 107)))) == [102, 103, 104, 105, 106]
    assert consumer._thread.seeks == [(P0, 102)]
    assert sample(intake.metrics, "sentinel_offset_rewinds_total", topic=TOPIC) == 1


def test_with_the_commit_ledger_held_events_are_not_pinned() -> None:
    """Acknowledging a held event commits nothing there, and a pinned one would block a stop."""
    consumer = FakeConsumer({P0: 100})
    intake = BatchIntake(Handler(), consumer, new_metrics(), max_batch=100, within_s=0.01,
                         hold_by_reference=False)
    batch = events([100, 101, 104, 105])
    assert offsets(admit(intake, batch)) == [100, 101]
    assert [e.message.refcount for e in batch] == [0, 0, 0, 0]
    assert consumer._thread.seeks == [(P0, 102)]


def test_events_prefetched_before_the_seek_ask_for_it_again_without_a_new_rewind() -> None:
    consumer = FakeConsumer({P0: 100})
    intake = intake_for(consumer)
    admit(intake, events([100, 103]))
    late = events([104, 105])
    assert admit(intake, late) == []
    assert [e.message.refcount for e in late] == [1, 1]
    assert consumer._thread.seeks == [(P0, 101), (P0, 101)]
    assert sample(intake.metrics, "sentinel_offset_rewinds_total", topic=TOPIC) == 1


def test_offsets_below_the_committed_one_are_dropped_not_held() -> None:
    consumer = FakeConsumer({P0: 100})
    intake = intake_for(consumer)
    batch = events([98, 99, 100])
    assert offsets(admit(intake, batch)) == [100]
    assert [e.message.refcount for e in batch] == [0, 0, 0]  # duplicates are safe to acknowledge
    assert consumer._thread.seeks == []


def test_without_a_committed_offset_the_log_start_is_expected() -> None:
    consumer = FakeConsumer({P0: None}, earliest={P0: 5})
    intake = intake_for(consumer)
    assert offsets(admit(intake, events([5, 6]))) == [5, 6]
    assert consumer.earliest_calls == [P0]


def test_a_rewind_to_offset_zero_clears_faust_s_read_offset() -> None:
    consumer = FakeConsumer({P0: None})
    intake = intake_for(consumer)
    assert admit(intake, events([1, 2])) == []
    assert consumer._thread.seeks == [(P0, 0)]
    assert consumer._read_offset == {P0: None}  # as Faust's own seek: None means "from anywhere"


def test_a_new_generation_reads_the_committed_offset_again() -> None:
    consumer = FakeConsumer({P0: 100})
    intake = intake_for(consumer)
    assert offsets(admit(intake, events([100, 101]))) == [100, 101]
    consumer._thread.committed_offsets[P0] = 200  # another worker moved it during the rebalance
    assert offsets(admit(intake, events([200, 201], generation=2))) == [200, 201]
    assert [c for c in consumer._thread.calls if c[0] == "committed"] == [("committed", (P0,))] * 2
    assert consumer._thread.seeks == []


def test_an_empty_committed_answer_after_a_known_commit_does_not_rewind_to_the_log_start() -> None:
    """A broker just restarted can answer "no commit" for a committed partition: expecting the log
    start then would rewind and replay the whole partition."""
    consumer = FakeConsumer({P0: 100}, earliest={P0: 0})
    intake = intake_for(consumer)
    assert offsets(admit(intake, events([100, 101]))) == [100, 101]
    consumer._thread.committed_offsets[P0] = None
    assert offsets(admit(intake, events([102, 103], generation=2))) == []  # held: 100, 101 again
    assert consumer._thread.seeks == [(P0, 100)] and consumer.earliest_calls == []


def test_partitions_are_guarded_independently() -> None:
    consumer = FakeConsumer({P0: 10, P1: 50})
    intake = intake_for(consumer)
    mixed = [*events([10], 0), *events([50], 1), *events([12], 0), *events([51, 52], 1)]
    admitted = admit(intake, mixed)
    assert [(e.message.partition, e.message.offset) for e in admitted] == [(0, 10), (1, 50), (1, 51), (1, 52)]
    assert consumer._thread.seeks == [(P0, 11)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_a_real_hole_is_accepted_after_the_timeout(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(1000.0)
    monkeypatch.setattr(offset_guard, "time", clock)  # the guard's clock only, not asyncio's
    consumer = FakeConsumer({P0: 100})
    intake = intake_for(consumer)
    assert offsets(admit(intake, events([100, 103]))) == [100]
    assert consumer._thread.seeks == [(P0, 101)]
    clock.now += intake.guard.hole_timeout_s + 1  # 101 and 102 never come, later offsets keep coming
    assert admit(intake, events([104])) == []
    assert intake.guard.holes_accepted == 1
    assert consumer._thread.seeks == [(P0, 101), (P0, 103)]  # back to the lowest offset seen since
    assert "taking them for a hole in the log" in caplog.text
    assert offsets(admit(intake, events([103, 104, 105]))) == [103, 104, 105]
    assert sample(intake.metrics, "sentinel_offset_rewinds_total", topic=TOPIC) == 1


# --- run: batches from take_events to the handler ----------------------------------------------

class Handler:
    def __init__(self) -> None:
        self.handled: list[list[int]] = []
        self.prepared: list[list[int]] = []
        self.finished: list[list[int]] = []
        self.all_finished = asyncio.Event()
        self.expected_finishes = 0

    async def handle(self, batch: Sequence[FakeEvent]) -> None:
        self.handled.append(offsets(batch))

    async def prepare(self, batch: Sequence[FakeEvent]) -> list[int]:
        self.prepared.append(offsets(batch))
        return offsets(batch)

    async def finish(self, prepared: list[int]) -> None:
        self.finished.append(prepared)
        if len(self.finished) == self.expected_finishes:
            self.all_finished.set()


class FakeStream:
    """``take`` yields the given batches; ``ack`` releases one reference, as Faust's."""

    def __init__(self, batches: list[list[FakeEvent]], wait_for: asyncio.Event | None = None) -> None:
        self.batches, self.wait_for = batches, wait_for
        self.take_args: tuple[int, float] | None = None

    @staticmethod
    def take(stream: FakeStream, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        stream.take_args = (max_, within)
        return stream._gen()

    async def _gen(self) -> AsyncIterator[list[FakeEvent]]:
        for batch in self.batches:
            yield batch
        if self.wait_for is not None:  # a real stream never ends; let the pipe finish first
            await asyncio.wait_for(self.wait_for.wait(), 5.0)

    async def ack(self, event: FakeEvent) -> bool:
        return event.message.decref() == 0


def test_run_hands_admitted_batches_to_the_handler() -> None:
    consumer = FakeConsumer({P0: 0})
    handler = Handler()
    intake = BatchIntake(handler, consumer, new_metrics(), max_batch=7, within_s=0.25,
                         take=FakeStream.take)  # type: ignore[arg-type]
    intake.guard.start(P0, 1, 999)  # stale expectations of a previous run are dropped by run()
    stream = FakeStream([events([0, 1]), events([3]), events([2, 3, 4])])
    asyncio.run(intake.run(stream))  # type: ignore[arg-type]
    assert stream.take_args == (7, 0.25)
    assert handler.handled == [[0, 1], [2, 3, 4]]  # the empty batch (only a held event) is skipped
    assert handler.prepared == [] and handler.finished == []


def test_run_with_a_pipeline_prepares_and_finishes_admitted_batches() -> None:
    consumer = FakeConsumer({P0: 0})
    handler = Handler()
    handler.expected_finishes = 2
    intake = BatchIntake(handler, consumer, new_metrics(), max_batch=7, within_s=0.25, pipeline_depth=1,
                         take=FakeStream.take)  # type: ignore[arg-type]

    async def go() -> tuple[list[FakeEvent], list[FakeEvent], list[FakeEvent]]:
        handler.all_finished = asyncio.Event()
        first, gap, again = events([0, 1]), events([3]), events([2, 3])
        await intake.run(FakeStream([first, gap, again], wait_for=handler.all_finished))  # type: ignore[arg-type]
        return first, gap, again

    first, gap, again = asyncio.run(go())
    assert handler.prepared == handler.finished == [[0, 1], [2, 3]]
    assert handler.handled == []
    # The pipe's own reference is released after finish; the held event keeps the guard's.
    assert [e.message.refcount for e in (*first, *again)] == [0, 0, 0, 0]
    assert gap[0].message.refcount == 1


class FakeProbe:
    """What the broker would say: the first offset that holds a record at or after ``offset``."""

    def __init__(self, existing: set[int]) -> None:
        self.existing, self.asked = existing, []

    async def next_offset(self, tp: TP, offset: int) -> int | None:
        self.asked.append(offset)
        return min((o for o in self.existing if o >= offset), default=None)


def test_a_hole_in_the_log_is_skipped_at_once_without_a_rewind() -> None:
    consumer = FakeConsumer({P0: 100})
    probe = FakeProbe({100, 101, 103, 104})  # 102: a transaction marker
    intake = BatchIntake(Handler(), consumer, new_metrics(), max_batch=100, within_s=0.01,
                         probe=probe)  # type: ignore[arg-type]
    assert offsets(admit(intake, events([100, 101, 103, 104]))) == [100, 101, 103, 104]
    assert probe.asked == [102] and consumer._thread.seeks == []
    assert intake.guard.holes_skipped == 1
    assert sample(intake.metrics, "sentinel_offset_rewinds_total", topic=TOPIC) == 0


def test_a_record_faust_skipped_still_rewinds_and_the_probe_is_asked_once() -> None:
    consumer = FakeConsumer({P0: 100})
    probe = FakeProbe(set(range(100, 110)))  # 102 exists: Faust dropped it
    intake = BatchIntake(Handler(), consumer, new_metrics(), max_batch=100, within_s=0.01,
                         probe=probe)  # type: ignore[arg-type]
    assert offsets(admit(intake, events([100, 101, 104, 105]))) == [100, 101]
    assert probe.asked == [102] and consumer._thread.seeks == [(P0, 102)]
    assert offsets(admit(intake, events(range(102, 106)))) == [102, 103, 104, 105]
    assert probe.asked == [102]
