"""The collector's pauses reach the metric per generation; tuning sets what it says."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streaming.worker import gc_pauses


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


def test_every_collection_is_reported_with_its_generation(restore_gc: None) -> None:
    seen: list[tuple[int, float]] = []
    gc_pauses.watch(lambda gen, seconds: seen.append((gen, seconds)))
    gc.collect(0)
    gc.collect(2)
    assert [gen for gen, _ in seen[-2:]] == [0, 2]
    assert all(0.0 <= s < 5.0 for _, s in seen)


def test_tune_freezes_the_heap_and_sets_the_young_threshold(restore_gc: None) -> None:
    _, t1, t2 = gc.get_threshold()
    gc_pauses.tune(freeze=True, threshold0=20_000)
    assert gc.get_threshold() == (20_000, t1, t2)
    assert gc.get_freeze_count() > 1000  # the test process's own heap
    gc.unfreeze()
    gc_pauses.tune(freeze=False)  # 0: thresholds stay as they are
    assert gc.get_threshold() == (20_000, t1, t2) and gc.get_freeze_count() == 0
