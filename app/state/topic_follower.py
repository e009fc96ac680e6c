"""Following every partition of a topic from outside the consumer group, until cancelled.

A worker that must read a whole topic, whichever partitions its group gives it (a table's changelog
read whole, the model snapshots), assigns itself all of them with a consumer of no group: no
rebalance moves them. :class:`TopicFollower` is that loop, once: it finds the topic's partitions,
notes their end offsets, seeks where :meth:`~TopicFollower._seek` says (by default to the
beginning), then hands each batch of ``(key, value)`` records to :meth:`~TopicFollower._take` as it
comes. When its positions reach the end offsets noted at the start it calls
:meth:`~TopicFollower._caught_up`, which turns :attr:`~TopicFollower.ready` true.
:attr:`~TopicFollower.read_to` says, per partition, the offset it has read up to: it has taken
every record written before it (compared with the topic's end offsets: how far behind it is). A
lost connection is logged and the follow starts over with a new consumer, which seeks again.

Subclasses say where to start and what to keep: by default the latest value of each key, in
``data`` (a ``None`` value, a tombstone, deletes the key).

>>> follower = TopicFollower("t-changelog", broker="localhost:9092")
>>> follower.apply([(b"a", b"1"), (b"b", b"2"), (b"a", None)])
>>> follower.data, follower.records
({b'b': b'2'}, 3)
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class TopicFollower:
    """The latest value of each key of ``topic`` on ``broker`` (``client_options``: the security
    settings of :func:`app.security.kafka_client_options`), in :attr:`data`, read from every
    partition. A topic that has not shown up after ``missing_wait_s`` is reported to
    :meth:`_missing`, then waited for."""

    batch_records = 10_000  # the most records a fetch hands over at once

    def __init__(self, topic: str, *, broker: str, client_options: dict | None = None,
                 missing_wait_s: float = 30.0) -> None:
        self.topic = topic
        self.broker = broker
        self.client_options = client_options or {}
        self.missing_wait_s = missing_wait_s
        self.data: dict[bytes, bytes] = {}
        self.ready = False  # read up to the end offsets found at the start
        self.records = 0  # the records applied to data
        self.read_to: dict[int, int] = {}  # partition -> the offset read up to (the next to read)

    def apply(self, records) -> None:
        """Apply ``(key, value)`` records in the topic's order (``None``: the key is deleted)."""
        data = self.data
        for key, value in records:
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            self.records += 1

    async def run(self, retry_s: float = 2.0) -> None:
        """Follow the topic until cancelled (a lost connection is logged and the follow starts over)."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged; started over
                log.warning("following %s failed (%r): starting over in %.0f s", self.topic, exc, retry_s)
                await asyncio.sleep(retry_s)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from app.admin import bootstrap_servers, topic_partitions

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(self.broker), enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None, **self.client_options)
        await consumer.start()
        try:
            tps = await topic_partitions(consumer, self.topic, timeout_s=self.missing_wait_s)
            if not tps:
                self._missing()
            while not tps:
                tps = await topic_partitions(consumer, self.topic, timeout_s=30.0)
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            await self._seek(consumer, ends)
            self._begin()
            caught_up = False
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=self.batch_records)
                self._take([(r.key, r.value) for messages in batch.values() for r in messages])
                positions = {tp: await consumer.position(tp) for tp in ends}
                self._taken({tp.partition: position for tp, position in positions.items()})
                if not caught_up:
                    caught_up = all(positions[tp] >= end for tp, end in ends.items())
                    if caught_up:
                        self._caught_up()
        finally:
            await consumer.stop()

    async def _seek(self, consumer, ends: dict) -> None:
        """Place ``consumer`` on each partition of ``ends`` (partition -> its end offset at the
        start of this follow): here, at the beginning."""
        await consumer.seek_to_beginning(*ends)

    def _missing(self) -> None:
        """The topic has not shown up after ``missing_wait_s``: it is waited for."""
        log.info("no topic %s yet: waiting for it", self.topic)

    def _begin(self) -> None:
        """A follow is about to read its first batch (its consumer placed by :meth:`_seek`)."""

    def _take(self, records: list[tuple[bytes, bytes | None]]) -> None:
        """Each batch of ``(key, value)`` records, in the topic's order: applied to :attr:`data`."""
        self.apply(records)

    def _taken(self, read_to: dict[int, int]) -> None:
        """Each partition's position once a batch was given to :meth:`_take` (the next offset to read)."""
        self.read_to.update(read_to)

    def _caught_up(self) -> None:
        """This follow read up to the end offsets found at its start: the follower is ready."""
        if not self.ready:
            log.info("read %s up to its end: %s", self.topic, self._contents())
            self.ready = True

    def _contents(self) -> str:
        """What :attr:`data` holds, for the log line that says the follower is ready."""
        return f"{len(self.data)} keys"
