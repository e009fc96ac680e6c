"""What the command line asks of Kafka, as plain synchronous calls (each runs its own event loop).

:class:`Cluster` is the one object the commands talk to Kafka through: the unit tests give the
commands a fake one (``CliRunner.invoke(main, args, obj=fake)``), so they check the argument
handling and the refusals without a broker.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.admin import bootstrap_servers


@dataclass
class Group:
    """A consumer group as the broker describes it: ``state`` (``Empty``, ``Dead``, ``Stable``,
    ``PreparingRebalance``, ...) and its members (``member_id``, ``client_id``, ``client_host``)."""

    name: str
    state: str
    members: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Record:
    """One message read back: where it is, its key and its value (None for a tombstone)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Cluster:
    """The Kafka cluster at ``broker`` (Faust's URL form or a bootstrap list), with the security
    options ``client_options`` (see :func:`app.security.kafka_client_options`) and messages up to
    ``max_bytes`` (a model checkpoint can outgrow Kafka's default 1 MB)."""

    def __init__(self, broker: str, client_options: dict[str, Any] | None = None,
                 max_bytes: int = 64 * 1024 * 1024) -> None:
        self.servers = bootstrap_servers(broker)
        self.options = dict(client_options or {})
        self.max_bytes = max_bytes

    def describe_group(self, group: str) -> Group:
        """The consumer group ``group`` (a group that never existed is ``Dead`` without members)."""
        async def go() -> Group:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.servers, **self.options)
            await admin.start()
            try:
                responses = await admin.describe_consumer_groups([group])
            finally:
                await admin.close()
            for response in responses:
                for described in response.to_object()["groups"]:
                    if described["group"] == group:
                        members = [{name: str(member.get(name, "")) for name in ("member_id", "client_id", "client_host")}
                                   for member in described["members"]]
                        return Group(group, described["state"], members)
            return Group(group, "Dead")

        return asyncio.run(go())

    def create_compacted_topic(self, topic: str, partitions: int, replicas: int) -> None:
        """Create ``topic`` as Faust creates a table's changelog: compacted, with messages up to
        ``max_bytes`` (an existing topic is left as it is)."""
        async def go() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.servers, **self.options)
            await admin.start()
            try:
                config = {"cleanup.policy": "compact", "max.message.bytes": str(self.max_bytes)}
                try:
                    await admin.create_topics([NewTopic(topic, partitions, replicas, topic_configs=config)])
                except TopicAlreadyExistsError:
                    pass
            finally:
                await admin.close()

        asyncio.run(go())

    def partitions(self, topic: str) -> list[int]:
        """The partitions of ``topic`` ([] when it does not exist)."""
        async def go() -> list[int]:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.servers, enable_auto_commit=False, group_id=None,
                                        **self.options)
            await consumer.start()
            try:
                await consumer._client.force_metadata_update()
                return sorted(consumer.partitions_for_topic(topic) or ())
            finally:
                await consumer.stop()

        return asyncio.run(go())

    def read(self, topic: str, partitions: list[int] | None = None, since_offset: int = 0) -> list[Record]:
        """Every message of ``topic`` (of ``partitions``; all by default) from ``since_offset`` (or the
        earliest kept) up to the end offsets of the moment of the call, in order per partition."""
        async def go() -> list[Record]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.servers, enable_auto_commit=False, group_id=None,
                max_partition_fetch_bytes=self.max_bytes, fetch_max_bytes=self.max_bytes, **self.options)
            await consumer.start()
            out: list[Record] = []
            try:
                await consumer._client.force_metadata_update()
                known = consumer.partitions_for_topic(topic) or set()
                tps = [TopicPartition(topic, p) for p in sorted(known) if partitions is None or p in partitions]
                if not tps:
                    return out
                consumer.assign(tps)
                starts = await consumer.beginning_offsets(tps)
                ends = await consumer.end_offsets(tps)
                todo = set()
                for tp in tps:
                    consumer.seek(tp, max(since_offset, starts[tp]))
                    if max(since_offset, starts[tp]) < ends[tp]:
                        todo.add(tp)
                while todo:
                    batch = await consumer.getmany(*todo, timeout_ms=500)
                    for tp, records in batch.items():
                        out.extend(Record(r.partition, r.offset, r.key, r.value) for r in records if r.offset < ends[tp])
                    for tp in list(todo):
                        if await consumer.position(tp) >= ends[tp]:
                            todo.discard(tp)
            finally:
                await consumer.stop()
            return out

        return asyncio.run(go())

    def send(self, messages: list[tuple[str, int | None, bytes | None, bytes | None]]) -> int:
        """Send ``(topic, partition, key, value)`` messages (``partition`` None: by key), each
        acknowledged by all in-sync replicas; how many were sent."""
        async def go() -> int:
            producer = AIOKafkaProducer(bootstrap_servers=self.servers, acks="all", enable_idempotence=True,
                                        max_request_size=self.max_bytes, **self.options)
            await producer.start()
            try:
                futures = [await producer.send(topic, value=value, key=key, partition=partition)
                           for topic, partition, key, value in messages]
                await asyncio.gather(*futures)
            finally:
                await producer.stop()
            return len(messages)

        return asyncio.run(go())

