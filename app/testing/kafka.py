"""Topics of the local stack as a test sees them: read (decoded through the registry), produce raw
bytes, the broker's committed and end offsets, wait until a topic holds so many messages, delete a
test's topics.

Each function runs its own event loop (``asyncio.run``): tests and benchmarks call them from plain
synchronous code. ``broker`` and ``registry`` default to the shared stack's
(:data:`app.testing.stack.BROKER`, :data:`~app.testing.stack.REGISTRY`).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from app.testing.names import Names
from app.testing.stack import BROKER, REGISTRY


def decoder(record: type, registry: str | None = None) -> Callable[[bytes], dict]:
    """A function that decodes Confluent-framed Avro bytes to a dict through the registry."""
    from app.serialization import ConfluentAvroCodec, make_registry_client

    codec = ConfluentAvroCodec(make_registry_client(registry or REGISTRY), "unused", record.avro_schema_to_python())
    return codec.loads


def read(topic: str, record: type | None = None, expect: int | None = None, timeout_s: float = 60.0,
         idle_s: float = 3.0, broker: str | None = None, registry: str | None = None,
         stop_if: Callable[[], bool] | None = None) -> list[tuple[bytes | None, Any, int, int]]:
    """``topic`` from the beginning (:func:`app.admin.read_topic`), each value decoded as ``record``
    (raw bytes without one): until ``expect`` messages, ``idle_s`` without a new one, ``timeout_s``,
    or ``stop_if()``."""
    from app.admin import read_topic

    return asyncio.run(read_topic(broker or BROKER, topic, decoder(record, registry) if record else None, expect,
                                  timeout_s, idle_s, stop_if))


def produce_raw(topic: str, messages: list[tuple[bytes | None, bytes | None]], broker: str | None = None,
                **producer_options: Any) -> None:
    """Send raw key/value bytes, as a faulty producer would."""
    from aiokafka import AIOKafkaProducer

    from app.admin import bootstrap_servers

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker or BROKER), **producer_options)
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(topic, value=value, key=key)
        finally:
            await producer.stop()

    asyncio.run(go())


def committed_and_end(group: str, topic: str, broker: str | None = None) -> tuple[dict[int, int], dict[int, int]]:
    """The broker's view of ``topic``: the group's committed offset and the end offset, per partition."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from app.admin import bootstrap_servers

    servers = bootstrap_servers(broker or BROKER)

    async def go() -> tuple[dict[int, int], dict[int, int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
            described = await admin.describe_topics([topic])
        finally:
            await admin.close()
        tps = [TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]]
        consumer = AIOKafkaConsumer(bootstrap_servers=servers)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(tps) if tps else {}
        finally:
            await consumer.stop()
        committed = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
        return committed, {tp.partition: end for tp, end in ends.items()}

    return asyncio.run(go())


def wait_written(topic: str, expect: int, timeout_s: float, idle_s: float,
                 stop_if: Callable[[], bool] | None = None, broker: str | None = None) -> int:
    """Wait until ``topic`` holds ``expect`` messages (the sum of its partitions' end offsets, asked
    for twice a second), without reading them (a reader would take CPU from the service being
    measured); give up after ``timeout_s``, after ``idle_s`` without a new message, or as soon as
    ``stop_if()`` is true. Returns the count last seen."""
    from aiokafka import AIOKafkaConsumer

    from app.admin import bootstrap_servers, topic_partitions

    async def go() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker or BROKER), enable_auto_commit=False,
                                    group_id=None)
        await consumer.start()
        try:
            started = time.monotonic()
            partitions = await topic_partitions(consumer, topic, timeout_s)
            if not partitions:
                return 0
            grew = time.monotonic()
            seen = -1
            while True:
                count = sum((await consumer.end_offsets(partitions)).values())
                now = time.monotonic()
                if count != seen:
                    seen, grew = count, now
                if (count >= expect or now - started > timeout_s or now - grew > idle_s
                        or (stop_if is not None and stop_if())):
                    return count
                await asyncio.sleep(0.5)
        finally:
            await consumer.stop()

    return asyncio.run(go())


def delete_topics(names: Names, broker: str | None = None) -> list[str]:
    """Delete the run's topics (stop its workers first: a running app would create them again).
    A failure is printed, not raised: the run's result does not depend on it."""
    from app.admin import delete_topics_with_prefix

    try:
        return asyncio.run(delete_topics_with_prefix(broker or BROKER, names.topic_prefixes))
    except Exception as exc:  # noqa: BLE001 - clean-up only
        print(f"could not delete the topics of {names.prefix}: {type(exc).__name__}: {exc}")
        return []
