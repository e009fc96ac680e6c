"""Small Kafka chores: create topics with the configured partitions, find a topic's partitions, read a
topic back."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

import settings
from app.security import kafka_client_options


def bootstrap_servers(broker: str) -> str:
    """Faust's broker URL(s) as a bootstrap list for aiokafka.

    >>> bootstrap_servers("kafka://127.0.0.1:9092")
    '127.0.0.1:9092'
    """
    return ",".join(part.split("://", 1)[-1] for part in broker.replace(";", ",").split(","))


async def ensure_topics(broker: str, names: list[str], partitions: int = 1, replicas: int = 1) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker), **kafka_client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(name, partitions, replicas) for name in names if name not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


class PartitionMismatch(RuntimeError):
    """Topics that must be co-partitioned have different partition counts."""


def check_co_partitioned(counts: dict[str, int]) -> None:
    """Raise :class:`PartitionMismatch` unless every topic of ``counts`` (name -> partitions) has
    as many partitions as the first: a label is looked for in its transaction's partition, and
    a score in the partition of its transaction.

    >>> check_co_partitioned({"transactions": 8, "labels": 8, "scores": 8})
    >>> check_co_partitioned({"transactions": 8, "labels": 4})
    Traceback (most recent call last):
    ...
    app.admin.PartitionMismatch: transactions has 8 partitions but labels has 4: they must have the same number (repartition labels, or recreate it with 8)
    """
    names = list(counts)
    for name in names[1:]:
        if counts[name] != counts[names[0]]:
            raise PartitionMismatch(
                f"{names[0]} has {counts[names[0]]} partitions but {name} has {counts[name]}: they must have the same "
                f"number (repartition {name}, or recreate it with {counts[names[0]]})")


async def partition_counts(broker: str, names: list[str]) -> dict[str, int]:
    """The number of partitions of each topic of ``names`` (in that order)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker), **kafka_client_options(settings))
    await admin.start()
    try:
        described = {topic["topic"]: len(topic["partitions"]) for topic in await admin.describe_topics(names)}
    finally:
        await admin.close()
    return {name: described[name] for name in names}


async def delete_topics_with_prefix(broker: str, prefixes: tuple[str, ...]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``; the names deleted.

    For test and benchmark runs, whose topics (and their apps' changelogs) are unique to the run:
    a broker that keeps thousands of left-over partitions holds hundreds of MB more heap for them,
    which slows every later run."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker), **kafka_client_options(settings))
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if t.startswith(prefixes))
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, timeout_s: float,
                           stop_if: Callable[[], bool] | None = None) -> list[TopicPartition]:
    """The partitions of ``topic``, once ``consumer`` has them from the cluster's metadata (a consumer
    without a subscription does not ask for it: asked again every 0.2 s until the topic shows up);
    ``[]`` after ``timeout_s``, or as soon as ``stop_if()`` is true."""
    deadline = time.monotonic() + timeout_s
    while True:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline or (stop_if is not None and stop_if()):
            return []
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)


async def read_topic(
    broker: str,
    topic: str,
    decode: Callable[[bytes], Any] | None = None,
    expect: int | None = None,
    timeout_s: float = 30.0,
    idle_s: float = 2.0,
    stop_if: Callable[[], bool] | None = None,
) -> list[tuple[bytes | None, Any, int, int]]:
    """Read ``topic`` from the beginning: (key, value, partition, offset) tuples.

    Stops when ``expect`` messages were read, or after ``idle_s`` without a new message once the
    end offsets are reached, or at ``timeout_s``, or when ``stop_if()`` is true (e.g. the process
    that writes the topic has exited).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker), enable_auto_commit=False, auto_offset_reset="earliest",
        group_id=None, **kafka_client_options(settings),
    )
    await consumer.start()
    out: list = []
    try:
        deadline = time.monotonic() + timeout_s
        tps = await topic_partitions(consumer, topic, timeout_s)
        if not tps:
            return out
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        last_seen = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for r in records:
                    out.append((r.key, decode(r.value) if decode else r.value, r.partition, r.offset))
                last_seen = time.monotonic()
            if expect is not None and len(out) >= expect:
                break
            if not batch and stop_if is not None and stop_if():
                break
            if not batch and time.monotonic() - last_seen > idle_s:
                end = await consumer.end_offsets(tps)
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= end[tp] for tp in tps) and expect is None:
                    break
    finally:
        await consumer.stop()
    return out
