"""Test harness for the real local stack: the stack itself, workers as subprocesses, topic reads.

Every test gets its own topic names and consumer group (a unique prefix), so tests never see each
other's messages on the shared broker.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from app.process import WorkerProcess, free_port  # noqa: F401 (re-exported for tests)

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "infra" / "stack.sh"
BROKER = os.environ.get("FRAUD_KAFKA_BROKER", "kafka://127.0.0.1:9092")
REGISTRY = os.environ.get("FRAUD_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")
TOPIC_KEYS = ("TRANSACTIONS", "LABELS", "SCORES", "ANOMALIES", "DRIFT_ALERTS", "DEAD_LETTERS")


def stack_running() -> bool:
    out = subprocess.run([str(STACK), "status"], capture_output=True, text=True)
    return out.stderr.count(" running (pid") == 2


class Worker(WorkerProcess):
    """A worker on one test's topics (its ``Names``), against the local stack."""

    def __init__(self, names: "Names", workdir: Path, extra_env: dict[str, str] | None = None, name: str = "worker"):
        env = {**names.env(), "FRAUD_KAFKA_BROKER": BROKER, "FRAUD_SCHEMA_REGISTRY_URL": REGISTRY, **(extra_env or {})}
        super().__init__(workdir, env, name=name)
        self.names = names


class Names:
    """The topic names and app id of one test."""

    def __init__(self, tag: str = "t") -> None:
        self.prefix = f"{tag}-{uuid.uuid4().hex[:8]}"
        self.app_id = f"fraud-{self.prefix}"
        for key in TOPIC_KEYS:
            setattr(self, key.lower(), f"{self.prefix}.{key.lower().replace('_', '-')}")

    @property
    def topic_prefixes(self) -> tuple[str, str]:
        """Every topic of the run starts with one of these: its own, and its app's (changelogs)."""
        return f"{self.prefix}.", f"{self.app_id}-"

    def env(self) -> dict[str, str]:
        env = {"FRAUD_APP_ID": self.app_id}
        for key in TOPIC_KEYS:
            env[f"FRAUD_{key}_TOPIC"] = getattr(self, key.lower())
        return env


def decoder(record: type, registry: str | None = None):
    """A function that decodes Confluent-framed Avro bytes to a dict through the registry."""
    from app.serialization import ConfluentAvroCodec, make_registry_client

    codec = ConfluentAvroCodec(make_registry_client(registry or REGISTRY), "unused", record.avro_schema_to_python())
    return codec.loads


def read(topic: str, record: type | None = None, expect: int | None = None, timeout_s: float = 60.0,
         idle_s: float = 3.0, broker: str | None = None, registry: str | None = None,
         stop_if: Callable[[], bool] | None = None) -> list[tuple[bytes | None, Any, int, int]]:
    from app.admin import read_topic

    return asyncio.run(read_topic(broker or BROKER, topic, decoder(record, registry) if record else None, expect,
                                  timeout_s, idle_s, stop_if))


def replay(names: Names, rows, broker: str | None = None, registry: str | None = None, **kwargs) -> Any:
    from app.replay import replay as _replay

    kwargs.setdefault("progress", False)
    return asyncio.run(_replay(
        rows, broker=broker or BROKER, registry_url=registry or REGISTRY, transactions_topic=names.transactions,
        labels_topic=names.labels, **kwargs,
    ))


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


def wait_committed(worker, topic: str, timeout_s: float = 60.0) -> None:
    """Until the worker's group has committed every partition of ``topic`` up to its end (asked of
    the broker, not of the worker's lag metric, which is refreshed only every few seconds), so that a
    restart redelivers nothing: at-least-once redelivery would count an event twice (in windows, in a
    detector), which is not what a restart test is about."""
    deadline = time.monotonic() + timeout_s
    while True:
        committed, ends = committed_and_end(worker.names.app_id, topic)
        if ends and all(committed.get(p, 0) >= end for p, end in ends.items()):
            return
        assert time.monotonic() < deadline, f"{topic}: committed {committed}, end {ends}\n{worker.log_tail()}"
        time.sleep(0.5)


def delete_topics(names: Names, broker: str | None = None) -> list[str]:
    """Delete the run's topics (stop its workers first: a running app would create them again).
    A failure is printed, not raised: the run's result does not depend on it."""
    from app.admin import delete_topics_with_prefix

    try:
        return asyncio.run(delete_topics_with_prefix(broker or BROKER, names.topic_prefixes))
    except Exception as exc:  # noqa: BLE001 - clean-up only
        print(f"could not delete the topics of {names.prefix}: {type(exc).__name__}: {exc}")
        return []
