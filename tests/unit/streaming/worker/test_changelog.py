"""AckedChangelog and write_table: changelog records go to the owning event's partition."""

from __future__ import annotations

import asyncio
from weakref import ref

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from faust.streams import _current_event, current_event

from streaming import topics
from streaming.kafka.batches import records_sender
from streaming.worker.changelog import AckedChangelog, FaustChangelog, StateItem, write_table
from tests.unit.streaming.worker.fakes import FakeTable, RecordingSend, make_event, topic

TICKS = topic(topics.TICKS)


def _items() -> list[StateItem]:
    a = make_event(b"{}", topic_name=TICKS, partition=2, offset=10)
    b = make_event(b"{}", topic_name=TICKS, partition=5, offset=11)
    return [(a, "AAA", b"state-of-AAA"), (b, "BBB", b"state-of-BBB")]


def test_records_go_to_the_owning_partition_keys_as_json_values_as_given() -> None:
    table, send = FakeTable(), RecordingSend()
    asyncio.run(AckedChangelog(table, send).write(_items()))
    assert [(s.topic, s.key, s.partition) for s in send.sent] == [
        (table.changelog_name, b'"AAA"', 2), (table.changelog_name, b'"BBB"', 5)]
    assert [s.value for s in send.sent] == [b"state-of-AAA", b"state-of-BBB"]
    assert table.data == {"AAA": b"state-of-AAA", "BBB": b"state-of-BBB"}
    # The store is written directly: Faust's own (buffered) changelog path is not used.
    assert table.set_calls == []


def test_store_is_written_only_after_every_record_is_acknowledged() -> None:
    table, send = FakeTable(), RecordingSend(auto_ack=False)

    async def run() -> None:
        task = asyncio.create_task(AckedChangelog(table, send).write(_items()))
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(send.sent) == 2 and send.pending() == 2  # both sent before any wait
        assert table.data == {} and not task.done()
        send.futures[1].set_result(None)  # acks may come in any order
        for _ in range(5):
            await asyncio.sleep(0)
        assert table.data == {} and not task.done()
        send.futures[0].set_result(None)
        await asyncio.wait_for(task, 1.0)
        assert set(table.data) == {"AAA", "BBB"}

    asyncio.run(run())


def test_a_failed_send_leaves_the_store_untouched() -> None:
    table, send = FakeTable(), RecordingSend(auto_ack=False)
    table.data["AAA"] = b"older"

    async def run() -> None:
        task = asyncio.create_task(AckedChangelog(table, send).write(_items()))
        await asyncio.sleep(0)
        send.futures[0].set_result(None)
        send.futures[1].set_exception(ConnectionError("broker gone"))
        with pytest.raises(ConnectionError):
            await task

    asyncio.run(run())
    assert table.data == {"AAA": b"older"}


def test_empty_write_sends_nothing() -> None:
    table, send = FakeTable(), RecordingSend()
    asyncio.run(AckedChangelog(table, send).write([]))
    assert send.sent == [] and table.data == {}


def test_write_table_sets_the_current_event_for_the_write_only() -> None:
    table = FakeTable()
    owner = make_event(b"{}", topic_name=TICKS, partition=4, offset=3)
    last_of_batch = make_event(b"{}", topic_name=TICKS, partition=1, offset=9)
    token = _current_event.set(None)
    try:
        write_table(table, owner, "AAA", {"ts": 1})
        assert current_event() is None  # restored afterwards
        _current_event.set(ref(last_of_batch))  # what Faust leaves set after take_events
        write_table(table, owner, "BBB", {"ts": 2})
        assert current_event() is last_of_batch
    finally:
        _current_event.reset(token)
    assert [(k, v) for k, v, _ in table.set_calls] == [("AAA", {"ts": 1}), ("BBB", {"ts": 2})]
    assert all(ev is owner for _, _, ev in table.set_calls)


def test_write_table_restores_the_context_when_the_write_raises() -> None:
    class Broken(FakeTable):
        def __setitem__(self, key: str, value: object) -> None:
            raise RuntimeError("store closed")

    token = _current_event.set(None)
    try:
        with pytest.raises(RuntimeError):
            write_table(Broken(), make_event(b"", topic_name=TICKS), "AAA", {})
        assert current_event() is None
    finally:
        _current_event.reset(token)


def test_faust_changelog_writes_each_item_as_its_owner() -> None:
    table = FakeTable()
    items = _items()
    asyncio.run(FaustChangelog(table).write(items))
    assert [(k, v, ev) for k, v, ev in table.set_calls] == [(key, value, ev) for ev, key, value in items]
    assert table.data == {"AAA": items[0][2], "BBB": items[1][2]}


class FakeBatchProducer:
    """aiokafka's batch API over real ``BatchBuilder``s; deliveries are futures the test settles."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []
        self.futures: list[asyncio.Future[None]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[None]:
        batch.close()
        records = [(bytes(r.key), bytes(r.value))
                   for r in DefaultRecordBatch(bytes(batch._build()))]  # what goes on the wire
        self.sent.append((topic, partition, records))
        self.futures.append(asyncio.get_running_loop().create_future())
        return self.futures[-1]


def test_batched_records_fill_batches_per_partition_and_the_store_waits_for_every_batch() -> None:
    table, send, kafka = FakeTable(), RecordingSend(), FakeBatchProducer(batch_size=300)
    a = make_event(b"{}", topic_name=TICKS, partition=2, offset=10)
    b = make_event(b"{}", topic_name=TICKS, partition=5, offset=11)
    items: list[StateItem] = [(a if i % 3 else b, f"S{i}", bytes([i]) * 60) for i in range(12)]

    async def run() -> None:
        task = asyncio.create_task(AckedChangelog(table, send, records_sender(lambda: kafka)).write(items))
        for _ in range(10):
            await asyncio.sleep(0)
        assert send.sent == []  # no per-record sends
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for name, partition, records in kafka.sent:
            assert name == table.changelog_name and 0 < len(records) < 8  # 300-byte batches
            by_partition.setdefault(partition, []).extend(records)
        assert {p: [k for k, _ in recs] for p, recs in by_partition.items()} == {
            2: [f'"S{i}"'.encode() for i in range(12) if i % 3],
            5: [f'"S{i}"'.encode() for i in range(12) if not i % 3]}
        assert len(kafka.sent) > 2 and table.data == {}
        for future in kafka.futures[:-1]:
            future.set_result(None)
        await asyncio.sleep(0)
        assert table.data == {} and not task.done()  # one batch still unacknowledged
        kafka.futures[-1].set_result(None)
        await asyncio.wait_for(task, 1.0)
        assert table.data == {key: value for _, key, value in items}

    asyncio.run(run())


def test_a_record_larger_than_a_batch_goes_in_a_batch_of_its_own() -> None:
    kafka = FakeBatchProducer(batch_size=100)
    records = [(b"a", b"x" * 30), (b"b", b"y" * 500), (b"c", b"z" * 30)]

    async def run() -> None:
        await records_sender(lambda: kafka)("t", 0, records)

    asyncio.run(run())
    assert [batch for _, _, batch in kafka.sent] == [records[:1], records[1:2], records[2:]]
