"""The last records of a topic partition, newest first: what a compacted topic of snapshots holds now.

A topic whose newest record supersedes every older one (the central learner's model snapshots,
:mod:`app.learning.central_learner`) is read from its end, not its beginning: :func:`last_records`
asks for the partition's end offset, seeks ``count`` records before it and reads up to it. The
older records, until compaction removes them, are never read. Offsets that compaction removed
leave fewer than ``count`` records; a partition that does not exist (yet) or is empty gives none.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

log = logging.getLogger(__name__)


async def last_records(topic: str, partition: int = 0, count: int = 5, *, broker: str = "kafka://127.0.0.1:9092",
                       client_options: Mapping[str, Any] | None = None, timeout_s: float = 10.0,
                       idle_s: float = 2.0) -> list[tuple[bytes | None, bytes | None, int]]:
    """The ``(key, value, offset)`` of the last ``count`` records of ``topic``'s ``partition`` as of
    the call, newest first. ``[]`` when the topic has no such partition within ``timeout_s``, or the
    partition is empty. ``broker`` and ``client_options`` as in :func:`app.state.read_back.read_back`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from app.admin import bootstrap_servers, topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker), enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest", **(client_options or {}))
    await consumer.start()
    try:
        if TopicPartition(topic, partition) not in await topic_partitions(consumer, topic, timeout_s=timeout_s):
            return []
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        begin = (await consumer.beginning_offsets([tp]))[tp]
        start = max(begin, end - count)
        if start >= end:
            return []
        consumer.seek(tp, start)
        out = []
        while True:
            records = (await consumer.getmany(tp, timeout_ms=int(idle_s * 1000), max_records=count)).get(tp, [])
            if not records:
                log.warning("reading the last records of %s partition %d: no record came within %.1f s before "
                            "offset %d (read up to %s)", topic, partition, idle_s, end, out[0][2] if out else None)
                break
            out.extend((r.key, r.value, r.offset) for r in records if r.offset < end)
            if records[-1].offset >= end - 1:
                break
        return out[::-1]
    finally:
        await consumer.stop()
