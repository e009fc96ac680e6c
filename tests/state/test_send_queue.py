"""The send queue: records reach the producer in the order they were queued, across bursts and while
the producer makes the queue wait; each future is settled as the producer's is."""
from __future__ import annotations

import asyncio
import types

import pytest

from app.state.send_queue import QueuedChangelog, SendQueue


class Producer:
    """Faust's producer as the queue uses it. ``send`` waits (a full batch in aiokafka) every
    ``wait_every`` records; ``refuse(value)`` raises before queuing; ``fail(value)`` fails its future."""

    def __init__(self, wait_every: int = 0, refuse=lambda value: False, fail=lambda value: False) -> None:
        self.records: list[tuple] = []
        self.wait_every, self.refuse, self.fail = wait_every, refuse, fail

    async def send(self, topic, key, value, partition, timestamp, headers):
        if self.refuse(value):
            raise ValueError(f"too large: {value!r}")
        if self.wait_every and len(self.records) % self.wait_every == 0:
            await asyncio.sleep(0)
        self.records.append((topic, partition, key, value))
        future = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        if self.fail(value):
            loop.call_soon(future.set_exception, RuntimeError(f"broker refused {value!r}"))
        else:
            loop.call_soon(future.set_result, len(self.records) - 1)
        return future


def test_records_reach_the_producer_in_order_while_more_are_queued():
    producer = Producer(wait_every=3)
    queue = SendQueue(lambda: producer)

    async def write():
        first = [queue.send("t", 0, b"k", str(i).encode()) for i in range(10)]
        await asyncio.sleep(0)  # the queue's task is sending; more come meanwhile
        second = [queue.send("t", 0, b"k", str(i).encode()) for i in range(10, 25)]
        results = await asyncio.gather(*first, *second)
        third = await asyncio.gather(queue.send("t", 1, b"j", b"last"))  # a new burst, a new task
        return results, third

    results, third = asyncio.run(write())
    assert [value for *_, value in producer.records] == [str(i).encode() for i in range(25)] + [b"last"]
    assert results == list(range(25)) and third == [25]
    assert len(queue) == 0 and queue._task is None


def test_a_refused_record_fails_its_own_future_only():
    producer = Producer(refuse=lambda value: value == b"big", fail=lambda value: value == b"bad")
    queue = SendQueue(lambda: producer)

    async def write():
        futures = [queue.send("t", 0, b"k", value) for value in (b"a", b"big", b"bad", b"b")]
        return await asyncio.gather(*futures, return_exceptions=True)

    a, big, bad, b = asyncio.run(write())
    assert (a, b) == (0, 2)
    assert isinstance(big, ValueError) and "too large" in str(big)
    assert isinstance(bad, RuntimeError) and "broker refused" in str(bad)


def test_without_a_producer_every_queued_record_fails():
    def no_producer():
        raise RuntimeError("the app has not started")

    queue = SendQueue(no_producer)

    async def write():
        futures = [queue.send("t", 0, b"k", b"v") for _ in range(3)]
        return await asyncio.gather(*futures, return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(write()))


def test_a_stopped_queue_cancels_what_it_did_not_send():
    class Stalled(Producer):
        async def send(self, *args):
            await asyncio.Event().wait()  # never returns

    queue = SendQueue(lambda: Stalled())

    async def write():
        futures = [queue.send("t", 0, b"k", b"v") for _ in range(3)]
        await asyncio.sleep(0)
        queue._task.cancel()
        return await asyncio.gather(*futures, return_exceptions=True)

    assert all(isinstance(r, asyncio.CancelledError) for r in asyncio.run(write()))
    assert len(queue) == 0


def test_a_queued_changelog_writes_the_tables_data_and_its_changelog_topic():
    from app.state.changelog import delete, put

    producer = Producer()
    table = types.SimpleNamespace(data={}, changelog_topic=types.SimpleNamespace(get_topic_name=lambda: "cards-changelog"))
    cards = QueuedChangelog(table, SendQueue(lambda: producer))

    async def write():
        return await asyncio.gather(put(cards, 3, b"c1", b"state"), delete(cards, 3, b"c1"), put(cards, 2, b"c2", b"s"))

    assert asyncio.run(write()) == [0, 1, 2]
    assert table.data == {b"c2": b"s"} and cards.data is table.data
    assert producer.records == [("cards-changelog", 3, b"c1", b"state"), ("cards-changelog", 3, b"c1", None),
                                ("cards-changelog", 2, b"c2", b"s")]


@pytest.mark.parametrize("n", [1, 1000])
def test_every_record_is_sent_once(n):
    producer = Producer(wait_every=7)
    queue = SendQueue(lambda: producer)

    async def write():
        return await asyncio.gather(*(queue.send("t", i % 4, None, str(i).encode()) for i in range(n)))

    assert sorted(asyncio.run(write())) == list(range(n))
    assert len(producer.records) == n
