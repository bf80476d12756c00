"""Offset continuity per partition: no input message may be skipped silently.

faust-streaming (0.15.3) can fail to hand some messages to the agent right after a
rebalance or restart: when recovery resumes the partitions before it seeks them to the
committed offsets, records fetched in that window are dropped while the consumer's
read offset moves past them. The crash test saw runs of 15-60 offsets per partition
vanish that way; the later offsets were processed and committed, so the skipped ticks
were never seen by any worker (each affected symbol's window silently missed a tick).

The guard checks that, within one consumer generation, each partition's events arrive
at consecutive offsets starting from the committed offset. On a jump it holds back the
events after the gap, unprocessed (their offsets never reach the commit ledger), and asks
for a rewind (a seek back to the first missing offset). Faust's drain loop may still be
handing out records fetched before the seek, which push its read offset up again and make
it drop the re-fetched records below it, so every held event asks for the seek again; the
rewind converges once those records are through (the crash tests: within a second). Nothing
but the expected offset is ever accepted, because after a seek Faust can resume a batch
half-way (a record just above the expected one is no proof that the expected one does not
exist). Only if the
expected offset has not arrived for ``hole_timeout_s`` while later ones keep coming does the
guard move on to the lowest offset it has seen, and says so (``holes_accepted``).

Real holes in the log (a transactional producer's commit markers, compaction, retention)
do not wait for that: at a fresh gap the intake asks the broker which record really comes
next (``HoleProbe``) and, if none exists below it, ``skip_to`` moves the expectation there
(``holes_skipped``). A Faust skip is told apart because its records do exist.

Pure logic: the agent glue applies the verdicts (seek, hold the message's ack).
"""

from __future__ import annotations

import time
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
    gap_since: float | None = None  # when the pending gap was first seen
    lowest_held: int | None = None  # lowest offset above the gap seen since then


class OffsetGuard:
    """Per-partition expected offsets; ``check`` says what to do with each event."""

    def __init__(self, hole_timeout_s: float = 30.0) -> None:
        self._parts: dict[Hashable, _Partition] = {}
        self.hole_timeout_s = hole_timeout_s
        self.rewinds = 0
        self.holes_accepted = 0
        self.holes_skipped = 0

    def needs_start(self, tp: Hashable, generation: int | None) -> bool:
        """True when ``tp`` has no expectation for this generation (call ``start`` first)."""
        part = self._parts.get(tp)
        return part is None or part.generation != generation

    def expected(self, tp: Hashable) -> int:
        return self._parts[tp].expected

    def skip_to(self, tp: Hashable, offset: int) -> None:
        """The broker says no record exists below ``offset`` (markers, compaction): expect it next."""
        part = self._parts[tp]
        if offset > part.expected:
            part.expected, part.gap_since, part.lowest_held = offset, None, None
            self.holes_skipped += 1

    def start(self, tp: Hashable, generation: int | None, first_offset: int) -> None:
        """Expect ``first_offset`` (the committed offset, or the log start) next."""
        self._parts[tp] = _Partition(generation, first_offset)

    def check(self, tp: Hashable, offset: int, now: float | None = None) -> tuple[Verdict, int | None]:
        """Verdict for the event at ``offset``, and an offset to seek ``tp`` to (or None)."""
        part = self._parts[tp]
        if offset < part.expected:
            return Verdict.DUPLICATE, None
        if offset == part.expected:
            part.expected, part.gap_since, part.lowest_held = offset + 1, None, None
            return Verdict.PROCESS, None
        now = time.monotonic() if now is None else now
        if part.gap_since is None:  # a fresh gap
            part.gap_since, part.lowest_held = now, offset
            self.rewinds += 1
        else:
            part.lowest_held = min(offset, part.lowest_held or offset)
        if now - part.gap_since > self.hole_timeout_s and part.lowest_held is not None:
            part.expected = part.lowest_held  # nothing below it exists: wait for it instead
            part.gap_since, part.lowest_held = now, None
            self.holes_accepted += 1
        return Verdict.HOLD, part.expected
