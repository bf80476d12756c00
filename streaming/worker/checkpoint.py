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
                 interval_s: float = 1.0, max_ticks: int = 50_000,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.table, self.writer, self.ledger = table, writer, ledger
        self.interval_s, self.max_ticks, self.now = interval_s, max_ticks, now
        self.live: dict[str, SymbolState] = {}
        self.owner: dict[str, EventT] = {}  # the symbol's latest event: its partition
        self.dirty: set[str] = set()
        self.open = 0  # batches whose state moved and whose outputs are not acknowledged yet
        self._ticks, self._last = 0, now()
        self._changed = self._saved = 0  # versions: every change, and the last one written
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
        changed = False
        for symbol in symbols:
            self.dirty.add(symbol)
            self.owner[symbol] = owner[symbol]
            changed = True
        self._ticks += ticks
        self._changed += changed

    def due(self) -> bool:
        return bool(self.dirty) and (self._ticks >= self.max_ticks
                                     or self.now() - self._last >= self.interval_s)

    def take(self) -> tuple[list[tuple[str, SymbolState]], int]:
        """The states to write (still live objects: serialise them before they move) and their version."""
        items = [(s, self.live[s]) for s in self.dirty if s in self.live]
        self.dirty.clear()
        self._ticks, self._last = 0, self.now()
        return items, self._changed

    async def write(self, snapshot: Snapshot, version: int, mark: dict[Any, int]) -> None:
        """Send a checkpoint, await its acknowledgement, then let ``mark``'s offsets be committed."""
        async with self._lock:
            owner = self.owner  # a symbol dropped meanwhile (revoked) is the next owner's
            await self.writer.write([(owner[s], s, v) for s, v in snapshot.items() if s in owner])
            for symbol, value in snapshot.items():
                if symbol in owner:
                    self.state_bytes += len(value) - self.sizes.get(symbol, 0)
                    self.sizes[symbol] = len(value)
            self._saved = max(self._saved, version)
            self.ledger.durable(mark)

    def settled(self, mark: dict[Any, int]) -> None:
        """After a batch: if every change so far is written, its offsets are durable already."""
        if self._saved == self._changed and not self._lock.locked():
            self.ledger.durable(mark)

    def drop(self, partitions: Iterable[int]) -> int:
        """Revoked partitions: forget their symbols (the next owner recovers them from the changelog)."""
        gone = set(partitions)
        symbols = [s for s, e in self.owner.items() if e.message.partition in gone]
        for symbol in symbols:
            self.live.pop(symbol, None)
            self.owner.pop(symbol, None)
            self.dirty.discard(symbol)
            self.state_bytes -= self.sizes.pop(symbol, 0)
        # States loaded but never touched carry no partition: reload them all on next use.
        for symbol in [s for s in self.live if s not in self.owner]:
            del self.live[symbol]
        return len(symbols)


def serialise(items: list[tuple[str, SymbolState]]) -> Snapshot:
    return {symbol: state.to_bytes() for symbol, state in items}
