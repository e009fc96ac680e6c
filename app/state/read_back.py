"""Reading a stretch of a topic partition back from Kafka, beside the worker's own consumer.

A partition's state restored from a checkpoint has not seen the events committed after that
checkpoint (the worker that took it crashed after committing more); the agents read those back
with :func:`read_back` to catch up (see :mod:`app.state.checkpointed` and the scoring agent's
``catch_up``). It streams: it holds at most a thousand messages at a time (beside the consumer's
fetch buffer), however long the stretch.

A read that does not cover the stretch it aimed for (its start was deleted by retention, its end
compacted away, no message came for ``idle_s``) is logged as a warning with the topic, the
partition, the offsets aimed for and those read, and counted in ``fraud_read_back_short_total``:
the state it fed goes on without the rest.
"""
from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Callable, Mapping

from app import metrics

log = logging.getLogger(__name__)


async def read_back(topic: str, partition: int, start: int, end: int, decode: Callable[[bytes], Any], *,
                    broker: str = "kafka://127.0.0.1:9092", client_options: Mapping[str, Any] | None = None,
                    idle_s: float = 1.0) -> AsyncIterator[tuple[bytes | None, Any, int]]:
    """The messages of ``topic``'s ``partition`` at offsets ``start <= offset < end``, in order, as
    ``(key, decode(value), offset)``. A message that cannot be decoded is skipped: it went to dead
    letters when it first came. Reading stops at ``end`` or when ``idle_s`` passes without a
    message; one that stops short of ``end`` (see the module's docstring) is logged and counted.

    ``broker`` is the Kafka address (Faust's ``kafka://host:port[;host:port]`` or plain
    ``host:port``); ``client_options`` are more keyword arguments of the consumer, such as the
    security options of :func:`app.security.kafka_client_options` (default: none, plaintext)."""
    if start >= end:
        return
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from app.admin import bootstrap_servers

    # earliest: a start before the log's first offset (retention deleted it) reads from what is left
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker), enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest", **(client_options or {}))
    await consumer.start()
    first, reached, finished = None, start, False  # the first offset read, the one after the last; ended by itself?
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        while True:
            records = (await consumer.getmany(tp, timeout_ms=int(idle_s * 1000), max_records=1000)).get(tp, [])
            for record in records:
                if record.offset >= end:
                    finished = True
                    return
                if first is None:
                    first = record.offset
                reached = record.offset + 1
                try:
                    value = decode(record.value)
                except Exception as exc:
                    log.warning("reading back %s partition %s offset %s: skipped, cannot decode it (%s); it went "
                                "to dead letters when it first came", topic, partition, record.offset, exc)
                    continue
                yield record.key, value, record.offset
            if not records or records[-1].offset >= end - 1:
                finished = True
                return
    finally:
        await consumer.stop()
        if finished and (reached < end or first != start):
            short(topic, partition, start, end, first, reached)


def short(topic: str, partition: int, start: int, end: int, first: int | None, reached: int) -> None:
    """Log and count a read back that did not cover ``start``..``end - 1``: it read ``first`` to
    ``reached - 1`` (nothing if ``first`` is None)."""
    read = "nothing" if first is None else f"offsets {first}-{reached - 1}"
    missing = end - start - (0 if first is None else reached - first)
    log.warning("reading back %s partition %s: aimed for offsets %d-%d, read %s (%d offsets missing at the ends: "
                "deleted, compacted, or no message within the idle timeout); the state goes on without them",
                topic, partition, start, end - 1, read, missing)
    metrics.READ_BACK_SHORT.labels(topic=topic, partition=str(partition)).inc()


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
