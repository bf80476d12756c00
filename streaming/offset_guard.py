"""Offset continuity per partition: no input message may be skipped silently.

faust-streaming (0.15.3) can fail to hand some messages to the agent right after a
rebalance or restart: when recovery resumes the partitions before it seeks them to the
committed offsets, records fetched in that window are dropped while the consumer's
read offset moves past them. The crash test saw runs of 15-60 offsets per partition
vanish that way; the later offsets were processed and committed, so the skipped ticks
were never seen by any worker (each affected symbol's window silently missed a tick).

The guard checks that, within one consumer generation, each partition's events arrive
at consecutive offsets starting from the committed offset. On a jump it asks for a
rewind (a seek back to the first missing offset) and holds back the events after the
gap, unprocessed and unacknowledged, until the missing ones arrive. Events fetched
before the seek took effect push Faust's read offset up again (it then drops the
re-fetched records below it), so each held event asks for the seek again; the rewind
converges once the prefetched events are through. If the log really has nothing in the
gap (transaction markers, compaction), the first offset at or below the gap's end that
arrives after the seek is accepted.

Pure logic: the agent glue applies the verdicts (seek, hold the message's ack).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    PROCESS = "process"
    DUPLICATE = "duplicate"  # below the expected offset: processed already, safe to ack
    HOLD = "hold"  # after a gap: do not process, do not ack; it will be delivered again


@dataclass(slots=True)
class _Partition:
    generation: int | None
    expected: int
    gap_at: int | None = None  # offset that revealed the gap while a rewind is pending


class OffsetGuard:
    """Per-partition expected offsets; ``check`` says what to do with each event."""

    def __init__(self) -> None:
        self._parts: dict[Hashable, _Partition] = {}
        self.rewinds = 0
        self.log_gaps_accepted = 0

    def needs_start(self, tp: Hashable, generation: int | None) -> bool:
        """True when ``tp`` has no expectation for this generation (call ``start`` first)."""
        part = self._parts.get(tp)
        return part is None or part.generation != generation

    def start(self, tp: Hashable, generation: int | None, first_offset: int) -> None:
        """Expect ``first_offset`` (the committed offset, or the log start) next."""
        self._parts[tp] = _Partition(generation, first_offset)

    def check(self, tp: Hashable, offset: int) -> tuple[Verdict, int | None]:
        """Verdict for the event at ``offset``, and an offset to seek ``tp`` to (or None)."""
        part = self._parts[tp]
        if offset < part.expected:
            return Verdict.DUPLICATE, None
        if offset == part.expected:
            part.expected, part.gap_at = offset + 1, None
            return Verdict.PROCESS, None
        if part.gap_at is None:  # a fresh gap
            part.gap_at = offset
            self.rewinds += 1
            return Verdict.HOLD, part.expected
        if offset <= part.gap_at:  # first record after the seek: the log has nothing below it
            part.expected, part.gap_at = offset + 1, None
            self.log_gaps_accepted += 1
            return Verdict.PROCESS, None
        return Verdict.HOLD, part.expected  # fetched before the seek took effect: seek again
