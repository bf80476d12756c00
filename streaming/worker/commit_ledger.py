"""Which input offsets may be committed: only those whose outputs and state are acknowledged.

Faust commits the first run of consecutive acknowledged offsets it holds, and it fills
the offsets it never delivered with "gaps" (meant for transaction markers), so records it
dropped after a rebalance could be committed unprocessed. The worker takes those commits
over for its input topics: the offset guard (``offset_guard.py``) admits each partition's
records in order from the committed offset, a handler reports a batch's offsets as
``finished`` once its outputs are acknowledged, and they become ``durable`` once the state
they produced is in an acknowledged checkpoint. Faust's commit loop asks ``committable``
and commits nothing else (``install``).

Pure bookkeeping, no I/O: partitions are any hashable (Faust's ``TP`` in the worker).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

logger = logging.getLogger(__name__)


class CommitLedger:
    """Per partition: the next offset after the last finished record, and after the last durable one."""

    def __init__(self) -> None:
        self._finished: dict[Hashable, int] = {}
        self._durable: dict[Hashable, int] = {}

    def finished(self, offsets: Mapping[Hashable, int], *, stateless: bool = False) -> None:
        """A batch's outputs are acknowledged; ``offsets`` maps each partition to its highest offset.

        ``stateless``: the records left no state behind (feedback), so they are durable now.
        """
        for tp, offset in offsets.items():
            if offset + 1 > self._finished.get(tp, -1):
                self._finished[tp] = offset + 1
                if stateless:
                    self._durable[tp] = offset + 1

    def mark(self) -> dict[Hashable, int]:
        """The finished offsets now: what a checkpoint taken at this instant covers."""
        return dict(self._finished)

    def durable(self, mark: Mapping[Hashable, int]) -> None:
        """The checkpoint taken at ``mark`` is acknowledged: those offsets may be committed."""
        for tp, offset in mark.items():
            if tp in self._finished and offset > self._durable.get(tp, -1):
                self._durable[tp] = offset

    def committable(self, tp: Hashable) -> int | None:
        """The offset to commit for ``tp`` (the next one to read), or None."""
        return self._durable.get(tp)

    def pending(self) -> int:
        """Partitions with finished records not yet covered by a checkpoint."""
        return sum(self._durable.get(tp, -1) < off for tp, off in self._finished.items())

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Revoked partitions: whoever owns them next starts from the committed offset."""
        for tp in tps:
            self._finished.pop(tp, None)
            self._durable.pop(tp, None)


def highest_offsets(events: Iterable[Any]) -> dict[Any, int]:
    """The highest offset per partition among a batch's events (Faust events)."""
    offsets: dict[Any, int] = {}
    for event in events:
        tp, offset = event.message.tp, event.message.offset
        if offset > offsets.get(tp, -1):
            offsets[tp] = offset
    return offsets


def install(consumer: Any, ledgers: Mapping[str, CommitLedger]) -> None:
    """Make Faust's commit loop commit the ledgers' offsets, and only those, for their topics.

    Events are still acknowledged to Faust (its rebalance waits for that), but their offsets
    are dropped here instead of becoming commit candidates. Other topics (the table's
    changelog during recovery) keep Faust's own rule.
    """
    if getattr(consumer, "_sentinel_ledgers", None) is ledgers:
        return
    own = consumer._new_offset

    def new_offset(tp: Any) -> int | None:
        ledger = ledgers.get(tp.topic)
        if ledger is None:
            return own(tp)
        consumer._acked[tp].clear()
        consumer._acked_index[tp].clear()
        return ledger.committable(tp)

    consumer._new_offset = new_offset
    consumer._sentinel_ledgers = ledgers
    logger.info("offsets of %s are committed from the worker's ledgers", ", ".join(sorted(ledgers)))
