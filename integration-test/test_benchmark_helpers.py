"""The benchmarks' own measuring helpers (:mod:`app.testing.stack`, :mod:`app.testing.cpu`,
:mod:`app.testing.kafka`), against the real local stack: what they report about the broker and its
topics is what is there."""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from app.admin import bootstrap_servers, ensure_topics
from app.testing.cpu import jit_cpu_seconds
from app.testing.kafka import wait_written
from app.testing.stack import BROKER, broker_pid


def test_broker_pid_is_the_running_broker(stack):
    pid = broker_pid()
    assert pid is not None
    assert b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_jit_cpu_seconds_counts_only_a_jvm_compilers_threads(stack):
    # a broker that has started and served requests has compiled code: its compiler threads have run
    assert jit_cpu_seconds(broker_pid()) > 0
    # this Python process has no compiler threads; a process that is gone counts nothing
    assert jit_cpu_seconds(os.getpid()) == 0.0
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert jit_cpu_seconds(gone.pid) == 0.0


def test_wait_written_sees_the_end_offsets(stack, names):
    topic = names.transactions

    async def produce(n: int) -> None:
        await ensure_topics(BROKER, [topic], 2, 1)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(BROKER))
        await producer.start()
        try:
            for i in range(n):
                await producer.send_and_wait(topic, value=b"x", key=str(i).encode())
        finally:
            await producer.stop()

    asyncio.run(produce(7))
    assert wait_written(topic, 7, timeout_s=30.0, idle_s=10.0) == 7  # over both partitions
    started = time.monotonic()
    assert wait_written(topic, 8, timeout_s=30.0, idle_s=1.0) == 7  # gives up once nothing comes
    assert time.monotonic() - started < 10.0
    assert wait_written(topic, 8, timeout_s=30.0, idle_s=10.0, stop_if=lambda: True) == 7
