"""Latency of the service, per transaction: from the producer's send (the Kafka timestamp of the
transaction message) to the score's ``processing_time``."""
from __future__ import annotations

import asyncio
import time

from app.testing.stack import BROKER


async def send_times(topic: str, prefix: str, expect: int, timeout_s: float = 120.0,
                     broker: str | None = None) -> dict[str, float]:
    """Transaction id -> the producer's send time (Kafka CreateTime, seconds) for ids with ``prefix``
    on ``topic`` (until ``expect`` of them or ``timeout_s``)."""
    from aiokafka import AIOKafkaConsumer

    from app.admin import bootstrap_servers, topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker or BROKER), enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    out: dict[str, float] = {}
    try:
        deadline = time.monotonic() + timeout_s
        tps = await topic_partitions(consumer, topic, timeout_s)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while len(out) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                for r in records:
                    tid = r.key.decode()
                    if tid.startswith(prefix):
                        out[tid] = r.timestamp / 1000.0
    finally:
        await consumer.stop()
    return out


def send_and_score_times(scores: list, transactions_topic: str, prefix: str,
                         expect: int) -> list[tuple[str, float, float]]:
    """(transaction id, the producer's send time, the score's processing time), in send order, for
    the transactions with ``prefix`` that have a score among ``scores`` (as
    :func:`app.testing.kafka.read` gives them)."""
    done = {v["transaction_id"]: v["processing_time"] for _, v, _, _ in scores
            if v["transaction_id"].startswith(prefix)}
    sent_at = asyncio.run(send_times(transactions_topic, prefix, expect))
    return [(t, sent_at[t], done[t]) for t in sorted((t for t in done if t in sent_at), key=sent_at.get)]
