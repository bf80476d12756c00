"""The offset guard never lets a skipped input offset pass silently."""

from __future__ import annotations

from streaming.worker.offset_guard import OffsetGuard, Verdict

TP = ("prices.ticks", 0)


def started(first: int = 100, generation: int = 1) -> OffsetGuard:
    guard = OffsetGuard()
    assert guard.needs_start(TP, generation)
    guard.start(TP, generation, first)
    assert not guard.needs_start(TP, generation)
    return guard


def test_consecutive_offsets_are_processed() -> None:
    guard = started()
    assert [guard.check(TP, o) for o in range(100, 105)] == [(Verdict.PROCESS, None)] * 5
    assert guard.rewinds == 0


def test_below_expected_is_a_duplicate() -> None:
    guard = started()
    guard.check(TP, 100)
    assert guard.check(TP, 100) == (Verdict.DUPLICATE, None)
    assert guard.check(TP, 42) == (Verdict.DUPLICATE, None)


def test_gap_holds_later_offsets_and_rewinds_until_the_missing_one_arrives() -> None:
    """What faust-streaming did after a restart: 1675..1689 never reached the agent."""
    guard = started(1670)
    for offset in range(1670, 1675):
        assert guard.check(TP, offset) == (Verdict.PROCESS, None)
    assert guard.check(TP, 1690) == (Verdict.HOLD, 1675)  # gap: seek back to 1675
    assert guard.check(TP, 1691) == (Verdict.HOLD, 1675)  # prefetched before the seek: seek again
    assert guard.rewinds == 1
    for offset in range(1675, 1695):  # re-read from 1675, all in order
        assert guard.check(TP, offset) == (Verdict.PROCESS, None)


def test_gap_at_the_start_of_a_generation() -> None:
    guard = started(500)
    assert guard.check(TP, 530) == (Verdict.HOLD, 500)
    assert guard.check(TP, 500) == (Verdict.PROCESS, None)


def test_a_record_just_above_the_expected_one_is_never_taken_for_a_hole() -> None:
    """After a seek Faust can resume a half-dropped batch: 1680 arriving proves nothing."""
    guard = started(1675)
    assert guard.check(TP, 1690, now=0.0) == (Verdict.HOLD, 1675)
    assert guard.check(TP, 1680, now=1.0) == (Verdict.HOLD, 1675)
    assert guard.check(TP, 1675, now=1.5) == (Verdict.PROCESS, None)
    assert guard.holes_accepted == 0


def test_a_real_hole_in_the_log_is_accepted_only_after_the_timeout() -> None:
    """Transaction markers take offsets: 11 never comes, so after the timeout 12 is expected."""
    guard = OffsetGuard(hole_timeout_s=30.0)
    guard.start(TP, 1, 10)
    guard.check(TP, 10, now=0.0)
    assert guard.check(TP, 12, now=1.0) == (Verdict.HOLD, 11)
    assert guard.check(TP, 12, now=20.0) == (Verdict.HOLD, 11)
    assert guard.check(TP, 12, now=31.5) == (Verdict.HOLD, 12)  # moves on: re-read from 12
    assert guard.holes_accepted == 1
    assert guard.check(TP, 12, now=32.0) == (Verdict.PROCESS, None)
    assert guard.check(TP, 13, now=32.1) == (Verdict.PROCESS, None)


def test_new_generation_restarts_from_the_committed_offset() -> None:
    guard = started(100, generation=1)
    guard.check(TP, 100)
    assert guard.needs_start(TP, 2)
    guard.start(TP, 2, 90)  # another worker committed less far; replayed offsets are processed
    assert guard.check(TP, 90) == (Verdict.PROCESS, None)


def test_partitions_are_independent() -> None:
    guard = started(0)
    other = ("prices.ticks", 1)
    guard.start(other, 1, 7)
    assert guard.check(other, 9) == (Verdict.HOLD, 7)
    assert guard.check(TP, 0) == (Verdict.PROCESS, None)
