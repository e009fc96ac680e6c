"""A read-only copy of a whole changelog-backed table, kept current by following its changelog.

Faust partitions a table like its source topic: a worker holds the keys of its own partitions only.
A table that every worker must read whole (the terminal windows: any card, in any partition, may
use any terminal) is written as usual by its partitions' owners, and read through a
:class:`TableView`: a consumer of every partition of the table's changelog topic, outside the
consumer group, from the beginning, applying each record (a value, or a tombstone that deletes the
key) to ``data`` as it comes. Faust's own ``GlobalTable`` is meant for this, but with
faust-streaming 0.15.3 and two workers its copies stopped following the changelog after the first
rebalance (see docs/architecture.md, "Window features").

The copy lags the table's writers by the changelog's round trip (tens of milliseconds on a quiet
broker); :attr:`TableView.ready` says it has read up to the end offsets it found at start.

>>> view = TableView("t-changelog", broker="localhost:9092")
>>> view.apply([(b"a", b"1"), (b"b", b"2"), (b"a", None)])
>>> view.data
{b'b': b'2'}
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class TableView:
    """The latest value of each key of the changelog ``topic`` on ``broker`` (``client_options``:
    the security settings of :func:`app.security.kafka_client_options`), in :attr:`data`."""

    def __init__(self, topic: str, *, broker: str, client_options: dict | None = None) -> None:
        self.topic = topic
        self.broker = broker
        self.client_options = client_options or {}
        self.data: dict[bytes, bytes] = {}
        self.ready = False
        self.records = 0

    def apply(self, records) -> None:
        """Apply ``(key, value)`` records in changelog order (``None``: the key is deleted)."""
        data = self.data
        for key, value in records:
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            self.records += 1

    async def run(self, retry_s: float = 2.0) -> None:
        """Follow the changelog until cancelled (a lost connection is logged and the follow starts
        over from the beginning)."""
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
            tps = []
            while not tps:
                tps = await topic_partitions(consumer, self.topic, timeout_s=30.0)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            fresh = {}
            started_over = bool(self.data)
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
                records = [(r.key, r.value) for messages in batch.values() for r in messages]
                if started_over:  # a copy read again from the beginning replaces the old one once read
                    fresh.update((k, v) for k, v in records)
                else:
                    self.apply(records)
                if not self.ready or started_over:
                    positions = {tp: await consumer.position(tp) for tp in ends}
                    if all(positions[tp] >= end for tp, end in ends.items()):
                        if started_over:
                            self.data = {k: v for k, v in fresh.items() if v is not None}
                            started_over, fresh = False, {}
                        if not self.ready:
                            log.info("read %s up to its end: %d keys", self.topic, len(self.data))
                        self.ready = True
        finally:
            await consumer.stop()
