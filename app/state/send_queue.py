"""Records sent straight to the producer, in the order they were queued, each with the future of its
confirmation: the path of the records the worker writes once or more per transaction or label (the
pending features, the parked labels, the card windows, the terminal labels and the terminal windows).

Faust's ``Table.send_changelog`` and ``Topic.send_soon`` do the same through the producer's buffer,
at a cost per record: a ``FutureMessage``, the topic's publish with its serializers, sensors and
callbacks, and, once more than 100 records wait there, the conductor stopping every consumer to
flush the buffer one record at a time (``wait_until_ebb``: an ``asyncio.wait_for`` per record). A
:class:`SendQueue` keeps a list: :meth:`SendQueue.send` appends the record and returns a plain
future; a task, started when the first record comes and ending when the list is empty, hands them
to the producer one after the other, so the records of a key reach their partition in the order
they were queued (a compacted changelog keeps the last). Each future is settled as the producer's
is: the broker's record metadata, or its error (a record it refused, one too large to be queued).

A changelog-backed table written through one (:class:`QueuedChangelog`) keeps its data and its
changelog as Faust's own do (Faust's recovery reads the same records back), without Faust's
bookkeeping of the offsets a persistent store has written: the worker's tables are in memory.

>>> import asyncio
>>> class Producer:  # what the queue uses of Faust's producer: ``send`` gives the future of the metadata
...     def __init__(self):
...         self.records = []
...     async def send(self, topic, key, value, partition, timestamp, headers):
...         self.records.append((topic, partition, key, value))
...         future = asyncio.get_running_loop().create_future()
...         future.set_result(f"{topic}[{partition}]@{len(self.records) - 1}")
...         return future
>>> producer = Producer()
>>> queue = SendQueue(lambda: producer)
>>> async def write():
...     futures = [queue.send("cards-changelog", 0, b"c1", b"1"), queue.send("cards-changelog", 0, b"c1", None)]
...     return await asyncio.gather(*futures)
>>> asyncio.run(write())
['cards-changelog[0]@0', 'cards-changelog[0]@1']
>>> producer.records
[('cards-changelog', 0, b'c1', b'1'), ('cards-changelog', 0, b'c1', None)]
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable


class SendQueue:
    """Records for the producer ``producer()`` (Faust's, read when the first record of a burst is
    sent: it exists once the app has started), sent in the order of :meth:`send`."""

    def __init__(self, producer: Callable[[], Any]) -> None:
        self._producer = producer
        self._records: collections.deque[tuple[str, int | None, bytes | None, bytes | None, asyncio.Future]] = \
            collections.deque()
        self._task: asyncio.Future | None = None

    def __len__(self) -> int:
        """The records queued and not yet handed to the producer."""
        return len(self._records)

    def send(self, topic: str, partition: int | None, key: bytes | None, value: bytes | None) -> asyncio.Future:
        """Queue a record (``partition`` None: the producer's partitioner chooses by key; ``value``
        None: a tombstone); the future of its metadata once the broker has it. Call it from the
        event loop's thread."""
        done = asyncio.get_running_loop().create_future()
        self._records.append((topic, partition, key, value, done))
        if self._task is None:
            self._task = asyncio.ensure_future(self._send_all())
        return done

    async def _send_all(self) -> None:
        records, done, error = self._records, None, None
        try:
            send = self._producer().send
            while records:
                topic, partition, key, value, done = records.popleft()
                try:
                    sent = await send(topic, key, value, partition, None, None)
                except Exception as exc:  # refused before it was queued: that record's error
                    if not done.done():
                        done.set_exception(exc)
                else:
                    sent.add_done_callback(lambda sent, done=done: _settle(done, sent))
                done = None
        except Exception as exc:  # no producer: every record queued fails with it
            error = exc
        finally:  # or stopped (the worker is stopping): what was not handed to the producer is never sent
            left = ([done] if done is not None else []) + [record[-1] for record in records]
            records.clear()
            self._task = None
            for future in left:
                if not future.done():
                    future.cancel() if error is None else future.set_exception(error)


def _settle(done: asyncio.Future, sent: asyncio.Future) -> None:
    if done.done():
        return
    if sent.cancelled():
        done.cancel()
    elif sent.exception() is not None:
        done.set_exception(sent.exception())
    else:
        done.set_result(sent.result())


class QueuedChangelog:
    """A changelog-backed Faust ``table`` whose changelog records go through ``queue``: what
    :func:`app.state.changelog.put` and :func:`~app.state.changelog.delete` use of a table (``data``,
    ``send_changelog``), the table's own ``data``."""

    def __init__(self, table, queue: SendQueue) -> None:
        self.table = table
        self.queue = queue
        self.topic = table.changelog_topic.get_topic_name()

    @property
    def data(self):
        return self.table.data

    def send_changelog(self, partition: int, key: bytes, value: bytes | None, **_serializers) -> asyncio.Future:
        """The changelog record of ``key`` (``value`` None: a tombstone) in ``partition``, queued;
        keys and values are bytes already (the worker's tables are raw)."""
        return self.queue.send(self.topic, partition, key, value)
