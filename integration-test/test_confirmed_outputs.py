"""An output the broker refuses stops the worker (exit code 74, app.outputs) before its input is
acknowledged, and a hung model process stops it too (exit code 70); restarted once the fault is
gone, the worker gives every input its output."""
from __future__ import annotations

import asyncio
import os
import signal
import time

from app.admin import bootstrap_servers
from app.data.synthetic import generate
from app.outputs import SEND_FAILED_EXIT_CODE
from app.records import DeadLetter, Score
from app.replay import transaction_id
from app.testing.kafka import produce_raw, read
from app.testing.replay import replay
from app.testing.stack import BROKER
from app.testing.worker import wait_committed

ENV = {"FRAUD_AGENTS": "scoring"}
SANE_MAX_BYTES = "1048588"  # Kafka's default max.message.bytes


def create_topic(name: str, max_message_bytes: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(BROKER))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, 1, 1, topic_configs={"max.message.bytes": str(max_message_bytes)})])
        finally:
            await admin.close()

    asyncio.run(go())


def set_max_message_bytes(name: str, value: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(BROKER))
        await admin.start()
        try:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": value})])
        finally:
            await admin.close()

    asyncio.run(go())


def wait_exit(worker, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while worker.proc.poll() is None:
        assert time.monotonic() < deadline, f"the worker did not stop:\n{worker.log_tail()}"
        time.sleep(0.2)
    return worker.proc.returncode


def wait_scored(worker, ids: set[str], timeout_s: float = 90.0) -> None:
    """Until every transaction of ``ids`` has a score (duplicates may come too: at-least-once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        scored = {value["transaction_id"] for _, value, _, _ in read(worker.names.scores, Score, timeout_s=30, idle_s=2)}
        if ids <= scored:
            return
        assert time.monotonic() < deadline, f"not scored: {sorted(ids - scored)}\n{worker.log_tail()}"


def test_a_refused_dead_letter_stops_the_worker_and_a_restart_loses_nothing(make_worker, names):
    create_topic(names.dead_letters, max_message_bytes=512)  # a dead letter carries the rejected bytes
    worker = make_worker(ENV)
    replay(names, generate(5, seed=1), id_prefix="before")
    produce_raw(names.transactions, [(b"bad", os.urandom(2000))])
    replay(names, generate(5, seed=2), id_prefix="after")

    assert wait_exit(worker) == SEND_FAILED_EXIT_CODE, worker.log_tail()
    assert f"sending to {names.dead_letters} failed" in worker.log_text()
    assert read(names.dead_letters, timeout_s=5, idle_s=2) == []

    set_max_message_bytes(names.dead_letters, SANE_MAX_BYTES)
    worker.start()
    letters = read(names.dead_letters, DeadLetter, expect=1, timeout_s=60)
    assert [(letter["offset"], letter["key"]) for _, letter, _, _ in letters] == [(5, b"bad")]
    ids = {transaction_id(prefix, i) for prefix in ("before", "after") for i in range(5)}
    wait_scored(worker, ids)
    wait_committed(worker, names.transactions)
    assert worker.alive()


def test_refused_scores_stop_the_worker_and_a_restart_scores_everything(make_worker, names):
    create_topic(names.scores, max_message_bytes=64)  # smaller than any batch of scores
    worker = make_worker(ENV)
    replay(names, generate(20, seed=3), id_prefix="tx")

    assert wait_exit(worker) == SEND_FAILED_EXIT_CODE, worker.log_tail()
    assert f"sending to {names.scores} failed" in worker.log_text()

    set_max_message_bytes(names.scores, SANE_MAX_BYTES)
    worker.start()
    wait_scored(worker, {transaction_id("tx", i) for i in range(20)})
    wait_committed(worker, names.transactions)
    assert worker.alive()


def test_a_hung_model_process_stops_the_worker_and_a_restart_scores_everything(make_worker, names):
    worker = make_worker({**ENV, "FRAUD_MODEL_HOST_TIMEOUT_S": "3"})
    replay(names, generate(10, seed=5), id_prefix="first")
    wait_scored(worker, {transaction_id("first", i) for i in range(10)})
    model_process, = worker.children()
    os.kill(model_process, signal.SIGSTOP)  # alive, answering nothing
    replay(names, generate(10, seed=6), id_prefix="second")

    assert wait_exit(worker, timeout_s=30) == 70, worker.log_tail()
    assert "gave no result for 3 s and was killed" in worker.log_text()
    worker.start()
    ids = {transaction_id(prefix, i) for prefix in ("first", "second") for i in range(10)}
    wait_scored(worker, ids)
    wait_committed(worker, names.transactions)
