"""Per-symbol state kept live in memory and checkpointed to the changelog now and then.

Writing every touched symbol's state after every batch cost a changelog record and a
JSON round trip of the detector's buffers per symbol per batch: with single ticks that
was most of the event loop's time (docs/benchmarks.md). Here states stay live objects;
the symbols changed since the last checkpoint are serialised (off the loop) and sent to
the changelog every ``interval_s`` or ``max_ticks``, and only once those records are
acknowledged do the input offsets the checkpoint covers become committable
(``CommitLedger.durable``). A crash replays the input from the last committed offset
against the last checkpoint, which holds exactly the ticks below that offset, so every
window is rebuilt exactly; outputs since the checkpoint come again (at least once).

Checkpoints are per partition and staggered: a symbol's state depends only on its own
partition's records, so a partition's checkpoint covers that partition's offsets alone.
With ``stagger`` the partitions take turns, one every ``interval_s / partitions``, each
still written about every ``interval_s``: the changelog records arrive as several small
bursts instead of one that the forecasts sent meanwhile queue behind (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from faust.types import EventT, TableT

from streaming.core.windows import SymbolState
from streaming.worker.changelog import StateItem
from streaming.worker.commit_ledger import CommitLedger

logger = logging.getLogger(__name__)
Snapshot = dict[str, bytes]  # symbol -> SymbolState.to_bytes()


class StateWriter(Protocol):
    async def write(self, items: list[StateItem]) -> None: ...


class Checkpoints:
    """Live states, what changed since the last checkpoint, and the checkpoint writes."""

    def __init__(self, table: TableT, writer: StateWriter, ledger: CommitLedger, *,
                 interval_s: float = 1.0, max_ticks: int = 50_000, stagger: bool = True,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.table, self.writer, self.ledger = table, writer, ledger
        self.interval_s, self.max_ticks, self.stagger, self.now = interval_s, max_ticks, stagger, now
        self.live: dict[str, SymbolState] = {}
        self.owner: dict[str, EventT] = {}  # the symbol's latest event: its partition
        self.dirty: dict[int, set[str]] = {}  # partition -> symbols changed since its checkpoint
        self.open = 0  # batches whose state moved and whose outputs are not acknowledged yet
        self._ticks = 0
        self._turn = now()  # when the last checkpoint was taken
        self._last: dict[int, float] = {}  # partition -> when its last checkpoint was taken
        # Versions per partition: every change, and the last one written.
        self._changed: dict[int, int] = {}
        self._saved: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self.sizes: dict[str, int] = {}  # bytes of each symbol's last written record
        self.state_bytes = 0

    def state(self, symbol: str) -> SymbolState:
        state = self.live.get(symbol)
        if state is None:
            try:
                state = SymbolState.from_value(self.table.get(symbol))
            except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:  # never ours, unless damaged
                logger.warning("state record of %s unreadable (%s): it starts afresh", symbol, exc)
                state = SymbolState()
            self.live[symbol] = state
        return state

    def restore(self, undo: dict[str, SymbolState]) -> None:
        """A failed batch: its symbols go back to the copies taken before it."""
        self.live.update(undo)

    def touched(self, symbols: Iterable[str], owner: dict[str, EventT], ticks: int) -> None:
        moved: set[int] = set()
        for symbol in symbols:
            event = self.owner[symbol] = owner[symbol]
            partition = event.message.partition
            if partition not in self.dirty:
                self.dirty[partition] = set()
                self._last.setdefault(partition, self._turn)
            self.dirty[partition].add(symbol)
            moved.add(partition)
        for partition in moved:
            self._changed[partition] = self._changed.get(partition, 0) + 1
        self._ticks += ticks

    def due(self) -> bool:
        return self._due() is not None

    def _due(self) -> list[int] | None:
        """The partitions to checkpoint now, or None."""
        if not self.dirty:
            return None
        now = self.now()
        if self._ticks >= self.max_ticks:
            return list(self.dirty)
        if self.interval_s <= 0 or not self.stagger:
            return list(self.dirty) if now - self._turn >= self.interval_s else None
        if now - self._turn < self.interval_s / max(len(self._last), 1):
            return None  # the previous partition's turn was too recent
        oldest = min(self.dirty, key=lambda p: (self._last.get(p, self._turn), p))
        return [oldest] if now - self._last.get(oldest, self._turn) >= self.interval_s else None

    def take(self, everything: bool = False) -> tuple[list[tuple[str, SymbolState]], dict[int, int]]:
        """The states to write (still live objects: serialise them before they move) and their
        versions per partition: what is due, or ``everything`` that changed (idle, hand-over)."""
        due = list(self.dirty) if everything else (self._due() or [])
        now = self.now()
        items: list[tuple[str, SymbolState]] = []
        for partition in due:
            items.extend((s, self.live[s]) for s in self.dirty.pop(partition) if s in self.live)
            self._last[partition] = now
        if not self.dirty:
            self._ticks = 0
        self._turn = now
        return items, {p: self._changed.get(p, 0) for p in due}

    async def write(self, snapshot: Snapshot, versions: dict[int, int], mark: dict[Any, int]) -> None:
        """Send a checkpoint, await its acknowledgement, then let ``mark``'s offsets of the
        checkpoint's partitions be committed."""
        async with self._lock:
            owner = self.owner  # a symbol dropped meanwhile (revoked) is the next owner's
            await self.writer.write([(owner[s], s, v) for s, v in snapshot.items() if s in owner])
            for symbol, value in snapshot.items():
                if symbol in owner:
                    self.state_bytes += len(value) - self.sizes.get(symbol, 0)
                    self.sizes[symbol] = len(value)
            for partition, version in versions.items():
                self._saved[partition] = max(self._saved.get(partition, 0), version)
            self.ledger.durable({tp: off for tp, off in mark.items() if _partition(tp) in versions})

    def settled(self, mark: dict[Any, int]) -> None:
        """After a batch: the offsets of partitions whose every change is written are durable already."""
        if self._lock.locked():
            return
        changed, saved = self._changed, self._saved
        self.ledger.durable({tp: off for tp, off in mark.items()
                             if changed.get(_partition(tp), 0) == saved.get(_partition(tp), 0)})

    def drop(self, partitions: Iterable[int]) -> int:
        """Revoked partitions: forget their symbols (the next owner recovers them from the changelog)."""
        gone = set(partitions)
        symbols = [s for s, e in self.owner.items() if e.message.partition in gone]
        for symbol in symbols:
            self.live.pop(symbol, None)
            self.owner.pop(symbol, None)
            self.state_bytes -= self.sizes.pop(symbol, 0)
        for partition in gone:  # a partition assigned again starts from its changelog
            self.dirty.pop(partition, None)
            self._last.pop(partition, None)
            self._changed.pop(partition, None)
            self._saved.pop(partition, None)
        # States loaded but never touched carry no partition: reload them all on next use.
        for symbol in [s for s in self.live if s not in self.owner]:
            del self.live[symbol]
        return len(symbols)


def _partition(tp: Any) -> int:
    return int(tp.partition)


def serialise(items: list[tuple[str, SymbolState]]) -> Snapshot:
    return {symbol: state.to_bytes() for symbol, state in items}
