"""The commit ledger: only offsets behind acknowledged outputs and an acknowledged checkpoint."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from faust.types import TP

from streaming.worker.commit_ledger import CommitLedger, highest_offsets, install
from tests.unit.streaming.worker.fakes import make_event

A, B = TP("ticks", 0), TP("ticks", 1)


def test_finished_offsets_are_not_committable_before_a_checkpoint() -> None:
    ledger = CommitLedger()
    ledger.finished({A: 9})
    assert ledger.committable(A) is None and ledger.pending() == 1
    mark = ledger.mark()
    ledger.finished({A: 19})  # after the checkpoint was taken: not covered by it
    ledger.durable(mark)
    assert ledger.committable(A) == 10 and ledger.pending() == 1


def test_durable_never_moves_back_and_ignores_forgotten_partitions() -> None:
    ledger = CommitLedger()
    ledger.finished({A: 9, B: 4})
    late_mark = ledger.mark()
    ledger.finished({A: 29})
    ledger.durable(ledger.mark())
    ledger.durable(late_mark)  # an older checkpoint acknowledged last
    assert ledger.committable(A) == 30
    ledger.forget([B])
    ledger.durable(late_mark)  # B was revoked meanwhile: its offsets are the next owner's
    assert ledger.committable(B) is None


def test_stateless_records_are_durable_once_finished() -> None:
    ledger = CommitLedger()
    ledger.finished({A: 3}, stateless=True)
    assert ledger.committable(A) == 4 and ledger.pending() == 0


def test_highest_offsets_per_partition() -> None:
    events = [make_event(b"{}", topic_name="ticks", partition=p, offset=o)
              for p, o in ((0, 5), (1, 2), (0, 7), (0, 6))]
    assert highest_offsets(events) == {A: 7, B: 2}


class FaustLikeConsumer:
    """Faust's commit bookkeeping, reduced to what ``install`` touches."""

    def __init__(self) -> None:
        self._acked: defaultdict[Any, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[Any, set[int]] = defaultdict(set)

    def _new_offset(self, tp: Any) -> int | None:
        acked = sorted(self._acked[tp])  # Faust: the first run of consecutive acked offsets
        return acked[-1] + 1 if acked else None


def test_installed_ledger_replaces_faust_s_rule_for_its_topics_only() -> None:
    consumer, ledger = FaustLikeConsumer(), CommitLedger()
    other = TP("changelog", 0)
    for tp in (A, other):
        consumer._acked[tp] = [40, 41, 42]  # e.g. records Faust dropped were filled in as a gap
        consumer._acked_index[tp] = {40, 41, 42}
    install(consumer, {"ticks": ledger})
    assert consumer._new_offset(A) is None  # nothing durable yet: Faust's acks do not count
    assert consumer._acked[A] == [] and consumer._acked_index[A] == set()
    ledger.finished({A: 12})
    ledger.durable(ledger.mark())
    assert consumer._new_offset(A) == 13
    assert consumer._new_offset(other) == 43
