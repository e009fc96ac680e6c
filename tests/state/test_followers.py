"""Following a topic outside the consumer group: a table's changelog read whole
(:class:`~app.state.table_view.TableView`) and the newest model snapshots
(:class:`~app.state.snapshot_follower.SnapshotFollower`), over an in-memory stand-in for Kafka."""
from __future__ import annotations

import asyncio
import types

import aiokafka
import pytest
from aiokafka import TopicPartition

from app.state.snapshot_follower import SnapshotFollower
from app.state.table_view import TableView


class Log:
    """Topics in memory: each a list of partitions, each a list of ``(key, value)`` records whose
    offsets are their indexes."""

    def __init__(self, **topics: int) -> None:
        self.topics = {name: [[] for _ in range(n)] for name, n in topics.items()}

    def append(self, topic: str, partition: int, *records: tuple[bytes, bytes | None]) -> None:
        self.topics[topic][partition].extend(records)


class FakeConsumer:
    """The part of aiokafka's consumer the followers use, over ``log``; ``fail_at`` (a count of
    ``getmany`` calls over all consumers, checked before each call) raises a lost connection once."""

    log: Log = Log()
    fail_at: int | None = None
    calls = 0
    made: list[FakeConsumer] = []

    def __init__(self, **options) -> None:
        self.options = options
        self.positions: dict[TopicPartition, int] = {}
        self.started = self.stopped = False
        self._client = types.SimpleNamespace(force_metadata_update=self._no_op)
        FakeConsumer.made.append(self)

    @staticmethod
    async def _no_op() -> None:
        pass

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        parts = self.log.topics.get(topic)
        return set(range(len(parts))) if parts else None

    def assign(self, tps) -> None:
        self.positions = {tp: 0 for tp in tps}

    async def seek_to_beginning(self, *tps) -> None:
        for tp in tps:
            self.positions[tp] = 0

    def seek(self, tp, offset: int) -> None:
        self.positions[tp] = offset

    async def end_offsets(self, tps) -> dict:
        return {tp: len(self.log.topics[tp.topic][tp.partition]) for tp in tps}

    async def position(self, tp) -> int:
        return self.positions[tp]

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        FakeConsumer.calls += 1
        if FakeConsumer.calls == self.fail_at:
            raise ConnectionError("lost the broker")
        batch = {}
        for tp, at in self.positions.items():
            records = self.log.topics[tp.topic][tp.partition][at:at + max_records - sum(map(len, batch.values()))]
            if records:
                batch[tp] = [types.SimpleNamespace(key=k, value=v, offset=at + i) for i, (k, v) in enumerate(records)]
                self.positions[tp] = at + len(records)
        if not batch:
            await asyncio.sleep(0.01)
        return batch


@pytest.fixture
def log(monkeypatch) -> Log:
    """An empty log the followers' consumers read (topics are made by each test)."""
    log = Log()
    monkeypatch.setattr(FakeConsumer, "log", log)
    monkeypatch.setattr(FakeConsumer, "fail_at", None)
    monkeypatch.setattr(FakeConsumer, "calls", 0)
    monkeypatch.setattr(FakeConsumer, "made", [])
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", FakeConsumer)
    return log


async def until(condition, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def following(follower, check) -> None:
    """Run ``follower`` while the coroutine function ``check`` runs, then cancel it; every consumer
    it made is stopped."""
    async def main():
        task = asyncio.create_task(follower.run(retry_s=0.0))
        try:
            await check()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    asyncio.run(main())
    assert FakeConsumer.made and all(c.started and c.stopped for c in FakeConsumer.made)


def test_a_table_view_reads_every_partition_from_the_beginning_then_follows(log):
    log.topics["t-changelog"] = [[(b"a", b"1"), (b"b", b"2"), (b"a", None)], [(b"c", b"3")]]
    view = TableView("t-changelog", broker="kafka://127.0.0.1:9092", client_options={"client_id": "v"})

    async def check():
        await until(lambda: view.ready)
        assert view.data == {b"b": b"2", b"c": b"3"} and view.records == 4
        assert view.read_to == {0: 3, 1: 1}  # the end offsets: every record written is in data
        log.append("t-changelog", 1, (b"b", None), (b"d", b"4"))
        await until(lambda: view.records == 6)
        assert view.data == {b"c": b"3", b"d": b"4"} and view.read_to == {0: 3, 1: 3}

    following(view, check)
    consumer = FakeConsumer.made[0]
    assert consumer.options["group_id"] is None and consumer.options["client_id"] == "v"
    assert consumer.options["bootstrap_servers"] == "127.0.0.1:9092"


def test_a_table_view_read_again_replaces_its_copy_once_read(log):
    log.topics["t-changelog"] = [[(b"a", b"1")], [(b"b", b"2")]]
    view = TableView("t-changelog", broker="127.0.0.1:9092")
    view.apply([(b"gone", b"0")])  # a copy from before: what the changelog no longer holds is dropped

    async def check():
        await until(lambda: view.ready)
        assert view.data == {b"a": b"1", b"b": b"2"} and view.read_to == {0: 1, 1: 1}
        log.append("t-changelog", 0, (b"a", None))
        FakeConsumer.fail_at = FakeConsumer.calls + 1  # the connection is lost: read again from the start
        await until(lambda: len(FakeConsumer.made) == 2 and FakeConsumer.calls > FakeConsumer.fail_at + 1)
        assert view.data == {b"b": b"2"} and view.read_to == {0: 2, 1: 1}
        log.append("t-changelog", 1, (b"c", b"3"))
        await until(lambda: b"c" in view.data)

    following(view, check)


def test_a_table_view_read_again_says_how_far_the_copy_it_serves_has_read():
    view = TableView("t-changelog", broker="127.0.0.1:9092")
    view._begin()
    view._take([(b"a", b"1"), (b"b", b"2")])
    view._taken({0: 2})
    view._caught_up()
    view._begin()  # read again (a lost connection): the copy served stays until the new one is read
    view._take([(b"a", b"1")])
    view._taken({0: 1})
    assert view.data == {b"a": b"1", b"b": b"2"} and view.read_to == {0: 2}
    view._take([(b"b", None), (b"c", b"3")])
    view._taken({0: 3})
    view._caught_up()
    assert view.data == {b"a": b"1", b"c": b"3"} and view.read_to == {0: 3}


def test_a_table_view_of_an_empty_changelog_is_ready(log):
    log.topics["t-changelog"] = [[], []]
    view = TableView("t-changelog", broker="127.0.0.1:9092")

    async def check():
        await until(lambda: view.ready)
        assert view.data == {} and view.read_to == {0: 0, 1: 0}

    following(view, check)


def snapshot(blob: bytes) -> types.SimpleNamespace:
    name, version = blob.decode().split("/")
    return types.SimpleNamespace(model_name=name, version=version)


def test_a_snapshot_follower_starts_at_the_last_record_of_each_partition(log):
    log.topics["snapshots"] = [[(b"lr", b"lr/1"), (b"lr", b"lr/2")], [], [(b"arf", b"arf/1"), (b"arf", b"arf/2")]]
    follower = SnapshotFollower("snapshots", snapshot, broker="127.0.0.1:9092")

    async def check():
        await until(lambda: follower.ready)
        assert follower.data == {b"lr": b"lr/2", b"arf": b"arf/2"} and follower.records == 2  # not lr/1, arf/1
        assert follower.newest("lr").version == "2" and follower.newest("arf").version == "2"
        assert [c.positions for c in FakeConsumer.made] == [{TopicPartition("snapshots", 0): 2,
                                                             TopicPartition("snapshots", 1): 0,
                                                             TopicPartition("snapshots", 2): 2}]
        log.append("snapshots", 1, (b"lr", b"lr/3"))
        await until(lambda: follower.data.get(b"lr") == b"lr/3")
        assert follower.newest("lr").version == "3"

    following(follower, check)


def test_a_snapshot_follower_without_a_topic_is_ready_and_waits_for_one(log):
    follower = SnapshotFollower("snapshots", snapshot, broker="127.0.0.1:9092", missing_wait_s=0.2)

    async def check():
        await until(lambda: follower.ready)
        assert follower.data == {} and follower.newest("lr") is None
        log.topics["snapshots"] = [[(b"lr", b"lr/1")]]
        await until(lambda: follower.newest("lr") is not None)

    following(follower, check)


def test_a_snapshot_follower_starts_over_from_the_last_records_after_a_lost_connection(log):
    log.topics["snapshots"] = [[(b"lr", b"lr/1")]]
    follower = SnapshotFollower("snapshots", snapshot, broker="127.0.0.1:9092")

    async def check():
        await until(lambda: follower.ready)
        FakeConsumer.fail_at = FakeConsumer.calls + 1
        await until(lambda: len(FakeConsumer.made) == 2)
        log.append("snapshots", 0, (b"lr", b"lr/2"), (b"lr", b"lr/3"))
        await until(lambda: follower.data == {b"lr": b"lr/3"})
        assert follower.ready and follower.newest("lr").version == "3"

    following(follower, check)
