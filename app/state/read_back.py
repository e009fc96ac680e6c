"""Reading a stretch of a topic partition back from Kafka, beside the worker's own consumer.

A partition's state restored from a checkpoint has not seen the events committed after that
checkpoint (the worker that took it crashed after committing more); the agents read those back
with :func:`read_back` to catch up (see :mod:`app.state.checkpointed` and the scoring agent's
``catch_up``).
"""
from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Callable, Mapping

log = logging.getLogger(__name__)


async def read_back(topic: str, partition: int, start: int, end: int, decode: Callable[[bytes], Any], *,
                    broker: str = "kafka://127.0.0.1:9092", client_options: Mapping[str, Any] | None = None,
                    ) -> AsyncIterator[tuple[bytes | None, Any, int]]:
    """The messages of ``topic``'s ``partition`` at offsets ``start <= offset < end``, in order, as
    ``(key, decode(value), offset)``. A message that cannot be decoded is skipped: it went to dead
    letters when it first came. Reading stops at ``end`` or when a second passes without a message
    (the stretch ends early on a compacted or truncated topic).

    ``broker`` is the Kafka address (Faust's ``kafka://host:port[;host:port]`` or plain
    ``host:port``); ``client_options`` are more keyword arguments of the consumer, such as the
    security options of :func:`app.security.kafka_client_options` (default: none, plaintext)."""
    if start >= end:
        return
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from app.admin import bootstrap_servers

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker), enable_auto_commit=False,
                                group_id=None, **(client_options or {}))
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        while True:
            records = (await consumer.getmany(tp, timeout_ms=1000, max_records=1000)).get(tp, [])
            for record in records:
                if record.offset >= end:
                    return
                try:
                    value = decode(record.value)
                except Exception as exc:
                    log.warning("reading back %s partition %s offset %s: skipped, cannot decode it (%s); it went "
                                "to dead letters when it first came", topic, partition, record.offset, exc)
                    continue
                yield record.key, value, record.offset
            if not records or records[-1].offset >= end - 1:
                return
    finally:
        await consumer.stop()


def values_reader(topic: str, decode: Callable[[bytes], Any], *, broker: str = "kafka://127.0.0.1:9092",
                  client_options: Mapping[str, Any] | None = None) -> Callable[[int, int, int], AsyncIterator[Any]]:
    """``reader(partition, start, end)``: the decoded values of :func:`read_back` alone (the
    ``catch_up`` of :class:`~app.state.checkpointed.CheckpointedStates`); ``broker`` and
    ``client_options`` as in :func:`read_back`."""
    async def read(partition: int, start: int, end: int) -> AsyncIterator[Any]:
        async for _, value, _ in read_back(topic, partition, start, end, decode, broker=broker,
                                           client_options=client_options):
            yield value

    return read
