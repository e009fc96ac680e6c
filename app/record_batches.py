"""The records of one batch of work to one topic, sent as one Kafka record batch per partition.

aiokafka's ``send`` makes, for every record, two coroutines, a future and an append to the
producer's accumulator; the scores of a scoring batch (one per transaction) are many records
sent at once. :class:`RecordBatches` appends them to a builder per partition (the producer's
``create_batch``) and sends each builder with ``send_batch``: one future per builder, the records
framed by aiokafka's C builder (about 3 against 7 µs of CPU per record with a local broker,
``docs/performance.md``). A builder holds the producer's ``max_batch_size`` bytes; a record that
does not fit starts another one of the same partition, sent after it (aiokafka queues a
partition's batch once the one before has left for the broker).

The records of a partition keep the order they were added in, and each gets its offset from its
batch's (:meth:`RecordBatches.offsets`). A batch the broker refuses fails its future, as a record's
send does.

>>> import asyncio, types
>>> class Builder:  # what is used of aiokafka's BatchBuilder: append, None once full
...     def __init__(self, room):
...         self.records, self.room = [], room
...     def append(self, *, timestamp, key, value):
...         if len(self.records) == self.room:
...             return None
...         self.records.append((key, value))
...         return types.SimpleNamespace(offset=len(self.records) - 1)
>>> class Producer:  # and of AIOKafkaProducer: create_batch, send_batch
...     def __init__(self):
...         self.sent, self.next_offset = [], {}
...     def create_batch(self):
...         return Builder(room=2)
...     async def send_batch(self, builder, topic, *, partition):
...         self.sent.append((topic, partition, builder.records))
...         base = self.next_offset.get(partition, 100)
...         self.next_offset[partition] = base + len(builder.records)
...         future = asyncio.get_running_loop().create_future()
...         future.set_result(types.SimpleNamespace(offset=base))
...         return future
>>> producer = Producer()
>>> async def send():
...     batches = RecordBatches(producer, "scores")
...     for partition, key in [(0, b"a"), (1, b"b"), (0, b"c"), (0, b"d")]:
...         batches.add(partition, key, key.upper())
...     return batches.offsets(await asyncio.gather(*await batches.send()))
>>> asyncio.run(send())   # the records' offsets, in the order they were added
[100, 100, 101, 102]
>>> producer.sent
[('scores', 0, [(b'a', b'A'), (b'c', b'C')]), ('scores', 1, [(b'b', b'B')]), ('scores', 0, [(b'd', b'D')])]
"""
from __future__ import annotations

import asyncio
from typing import Any


class RecordBatches:
    """Records for ``topic`` gathered per partition (:meth:`add`), then sent (:meth:`send`) through
    ``producer`` (an ``aiokafka.AIOKafkaProducer``)."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self._open: dict[int, int] = {}  # partition -> the index in _builders of the builder it adds to
        self._builders: list[tuple[int, Any]] = []  # (partition, builder), in the order they were started
        self._placed: list[tuple[int, int]] = []  # each record's (builder index, offset within the builder)

    def add(self, partition: int, key: bytes | None, value: bytes) -> None:
        """Add a record to ``partition``'s batch (a new one when it is full)."""
        index = self._open.get(partition)
        metadata = None if index is None else self._builders[index][1].append(timestamp=None, key=key, value=value)
        if metadata is None:  # no builder yet for the partition, or it is full
            index = self._open[partition] = len(self._builders)
            self._builders.append((partition, self.producer.create_batch()))
            metadata = self._builders[index][1].append(timestamp=None, key=key, value=value)
            if metadata is None:  # (aiokafka's empty builder takes any record, however large)
                raise ValueError(f"a record of {len(value)} bytes does not fit an empty batch for {self.topic}")
        self._placed.append((index, metadata.offset))

    async def send(self) -> list[asyncio.Future]:
        """Send the batches; the futures of their metadata (each fails if the broker refuses it),
        one per batch in the order :meth:`offsets` takes them."""
        return [await self.producer.send_batch(builder, self.topic, partition=partition)
                for partition, builder in self._builders]

    def offsets(self, metadata: list) -> list[int]:
        """Each record's offset in its partition, in the order they were added, from the batches'
        ``metadata`` (the results of :meth:`send`'s futures)."""
        return [metadata[index].offset + offset for index, offset in self._placed]
