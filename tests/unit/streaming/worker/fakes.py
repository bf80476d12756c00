"""Test doubles for the worker's handlers: a recording producer, events, a table, a registry.

No Kafka and no Faust worker: events carry a real ``faust.types.Message`` (so ``tp``,
``generation_id`` and the reference counting are Faust's own), the producer is a
callable that records what it is asked to send, and the table is a dict.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from faust.streams import current_event
from faust.types import TP, Message
from prometheus_client import CollectorRegistry

from streaming.metrics import Metrics
from streaming.serving.model_registry import ModelRegistry

PREFIX = "test."


def topic(name: str) -> str:
    """The ``settings.topic`` the handlers get: the contract name with a prefix."""
    return f"{PREFIX}{name}"


@dataclass(frozen=True)
class Sent:
    """One record handed to the producer."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None

    @property
    def json(self) -> Any:
        return orjson.loads(self.value)


class RecordingSend:
    """Stands in for the producer's ``send``: records each call and returns its ack future.

    ``auto_ack`` resolves each future at once (a broker that acknowledges instantly);
    otherwise the test resolves them with :meth:`ack_all` or :meth:`fail_all`.
    Usable both as ``Send`` (topic, key, value) and ``PartitionSend`` (..., partition).
    """

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.sent: list[Sent] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def __call__(self, topic: str, key: bytes | None, value: bytes,
                       partition: int | None = None) -> asyncio.Future[Any]:
        self.sent.append(Sent(topic, key, value, partition))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.auto_ack:
            future.set_result(len(self.sent) - 1)
        self.futures.append(future)
        return future

    def to(self, name: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == name]

    def pending(self) -> int:
        return sum(not f.done() for f in self.futures)

    def ack_all(self) -> None:
        for i, future in enumerate(self.futures):
            if not future.done():
                future.set_result(i)

    def fail_all(self, exc: BaseException) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(exc)


@dataclass
class FakeEvent:
    """What the handlers read of a Faust event: ``value``, ``key`` and ``message``."""

    value: bytes
    key: bytes | None
    message: Message


def make_event(value: bytes, *, topic_name: str, partition: int = 0, offset: int = 0,
               key: bytes | None = None, generation_id: int | None = 1) -> FakeEvent:
    tp = TP(topic_name, partition)
    message = Message(topic_name, partition, offset, 0.0, 0, None, key, value, None,
                      tp=tp, generation_id=generation_id)
    return FakeEvent(value=value, key=key, message=message)


class _ChangelogTopic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class FakeTable:
    """A Faust table as the handlers use it: ``get``, ``data`` (the store), ``table[key] = v``.

    ``__setitem__`` records which event was Faust's *current* event at the time, since
    that is the event whose partition Faust would send the changelog record to.
    """

    changelog_name: str = "test-symbol-state-changelog"
    data: dict[str, Any] = field(default_factory=dict)
    set_calls: list[tuple[str, Any, Any]] = field(default_factory=list)  # (key, value, current event)

    @property
    def changelog_topic(self) -> _ChangelogTopic:
        return _ChangelogTopic(self.changelog_name)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set_calls.append((key, value, current_event()))
        self.data[key] = value


def new_metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A sample's value, 0.0 when the series does not exist (yet)."""
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def load_registry(models_dir: Path) -> ModelRegistry:
    registry = ModelRegistry(models_dir, new_metrics())
    registry.load_initial()
    return registry


class FakeConsumerThread:
    """Faust's consumer thread as ``consumer_control`` uses it.

    ``call_thread`` runs the call (awaiting coroutines) and records it; ``_ensure_consumer``
    returns the aiokafka consumer, here this same object, whose ``committed`` is a coroutine.
    """

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed_offsets = committed
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.seeks: list[tuple[TP, int]] = []
        self.failing: set[TP] = set()  # committed() raises for these (revoked mid-call)
        self.hanging: set[TP] = set()  # committed() never returns for these

    def _ensure_consumer(self) -> FakeConsumerThread:
        return self

    async def committed(self, tp: TP) -> int | None:
        if tp in self.failing:
            raise KeyError(tp)
        if tp in self.hanging:
            await asyncio.Event().wait()
        return self.committed_offsets.get(tp)

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def call_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.calls.append((fn.__name__, args))
        result = fn(*args)
        return await result if inspect.isawaitable(result) else result


class FakeConsumer:
    """Faust's consumer: the internals ``consumer_control`` touches and what ``LagReporter`` reads.

    ``position`` reports the same offsets as the committed ones (a consumer that is caught
    up with its commits), so lag tests hold whichever of the two the reporter reads.
    """

    def __init__(self, committed: dict[TP, int | None], earliest: dict[TP, int] | None = None,
                 assigned: set[TP] | None = None, highwaters: dict[TP, int] | None = None) -> None:
        self._thread = FakeConsumerThread(committed)
        self._read_offset: dict[TP, int | None] = {}
        self.earliest = earliest or {}
        self.earliest_calls: list[TP] = []
        self.assigned = assigned or set()
        self.ends = highwaters or {}
        self.highwater_calls: list[set[TP]] = []

    @property
    def offsets(self) -> dict[TP, int | None]:
        return self._thread.committed_offsets

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.earliest_calls.extend(tps)
        return {tp: self.earliest.get(tp, 0) for tp in tps}

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        self.highwater_calls.append(set(tps))
        return {tp: self.ends[tp] for tp in tps if tp in self.ends}

    async def position(self, tp: TP) -> int | None:
        return await self._thread.committed(tp)
