"""LagReporter: one lag gauge per owned input partition, none left behind for revoked ones."""

from __future__ import annotations

import asyncio

from faust.types import TP

from streaming.metrics import Metrics
from streaming.worker.lag import LagReporter
from tests.unit.streaming.worker.fakes import FakeConsumer, new_metrics

TICKS, FEEDBACK, OTHER = "test.prices.ticks", "test.feedback.messages", "test-symbol-state-changelog"


def consumer_for(assigned: set[TP], highwaters: dict[TP, int], offsets: dict[TP, int]) -> FakeConsumer:
    """``offsets``: where the consumer is (its position, which here equals its committed offset)."""
    return FakeConsumer(dict(offsets), assigned=assigned, highwaters=highwaters)


def lag(metrics: Metrics, tp: TP) -> float | None:
    return metrics.registry.get_sample_value("sentinel_consumer_lag",
                                             {"topic": tp.topic, "partition": str(tp.partition)})


def series(metrics: Metrics) -> set[tuple[str, str]]:
    return {(s.labels["topic"], s.labels["partition"])
            for m in metrics.consumer_lag.collect() for s in m.samples}


def report(reporter: LagReporter) -> None:
    asyncio.run(reporter.report())


def test_lag_is_end_minus_the_consumer_offset_for_owned_input_partitions() -> None:
    t0, t1, f0, other = TP(TICKS, 0), TP(TICKS, 1), TP(FEEDBACK, 0), TP(OTHER, 0)
    consumer = consumer_for({t0, t1, f0, other}, {t0: 100, t1: 50, f0: 7, other: 1000},
                            {t0: 90, t1: 50, f0: 0, other: 0})
    metrics = new_metrics()
    report(LagReporter(consumer, metrics, {TICKS, FEEDBACK}))
    assert (lag(metrics, t0), lag(metrics, t1), lag(metrics, f0)) == (10, 0, 7)
    assert lag(metrics, other) is None  # not an input topic: no series
    assert consumer.highwater_calls == [{t0, t1, f0}]  # one call for all owned partitions


def test_lag_is_never_negative_and_a_missing_end_means_caught_up() -> None:
    ahead, unknown = TP(TICKS, 0), TP(TICKS, 1)
    consumer = consumer_for({ahead, unknown}, {ahead: 10}, {ahead: 12, unknown: 5})
    metrics = new_metrics()
    report(LagReporter(consumer, metrics, {TICKS}))
    assert (lag(metrics, ahead), lag(metrics, unknown)) == (0, 0)


def test_a_failing_offset_lookup_skips_that_partition_only() -> None:
    bad, good = TP(TICKS, 0), TP(TICKS, 1)
    consumer = consumer_for({bad, good}, {bad: 10, good: 10}, {bad: 0, good: 4})
    consumer._thread.failing.add(bad)
    metrics = new_metrics()
    report(LagReporter(consumer, metrics, {TICKS}))
    assert lag(metrics, bad) is None and lag(metrics, good) == 6


def test_a_hanging_offset_lookup_times_out() -> None:
    stuck, good = TP(TICKS, 0), TP(TICKS, 1)
    consumer = consumer_for({stuck, good}, {stuck: 10, good: 10}, {stuck: 0, good: 9})
    consumer._thread.hanging.add(stuck)
    metrics = new_metrics()
    report(LagReporter(consumer, metrics, {TICKS}))  # returns, after the call's timeout
    assert lag(metrics, stuck) is None and lag(metrics, good) == 1


def test_revoked_partitions_lose_their_series_and_owned_ones_are_updated() -> None:
    t0, t1, t2 = TP(TICKS, 0), TP(TICKS, 1), TP(TICKS, 2)
    consumer = consumer_for({t0, t1}, {t0: 10, t1: 20, t2: 30}, {t0: 5, t1: 5, t2: 0})
    metrics = new_metrics()
    reporter = LagReporter(consumer, metrics, {TICKS})
    report(reporter)
    assert series(metrics) == {(TICKS, "0"), (TICKS, "1")}

    consumer.assigned = {t1, t2}  # a rebalance took partition 0 away and gave partition 2
    consumer.offsets[t1] = 18
    report(reporter)
    assert series(metrics) == {(TICKS, "1"), (TICKS, "2")}
    assert lag(metrics, t0) is None and (lag(metrics, t1), lag(metrics, t2)) == (2, 30)


def test_nothing_owned_clears_every_series_without_asking_for_ends() -> None:
    t0 = TP(TICKS, 0)
    consumer = consumer_for({t0}, {t0: 3}, {t0: 1})
    metrics = new_metrics()
    reporter = LagReporter(consumer, metrics, {TICKS})
    report(reporter)
    assert lag(metrics, t0) == 2
    consumer.assigned = {TP(OTHER, 0)}
    report(reporter)
    assert series(metrics) == set()
    assert len(consumer.highwater_calls) == 1


def test_no_commit_after_a_commit_is_not_read_as_the_whole_log() -> None:
    """After a broker restart aiokafka can answer "no commit" for a committed partition: the
    soak's gauge then read one partition's whole log. A partition never committed still
    counts from the log start."""
    known, fresh = TP(TICKS, 0), TP(TICKS, 1)
    consumer = consumer_for({known, fresh}, {known: 270_000, fresh: 40}, {known: 262_000, fresh: None})
    metrics = new_metrics()
    reporter = LagReporter(consumer, metrics, {TICKS})
    report(reporter)
    assert (lag(metrics, known), lag(metrics, fresh)) == (8_000, 40)
    consumer.offsets[known] = None  # the coordinator is back but its answer is empty
    consumer.ends[known] = 271_000
    report(reporter)
    assert lag(metrics, known) == 9_000
