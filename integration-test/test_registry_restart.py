"""A registry restart mid-stream: the schema ids in the messages Kafka keeps still name the same
schemas afterwards, so a fresh worker reads the whole topic from the beginning.

The registry keeps its schemas in the stack's own Kafka (``infra/stack.sh``: Apicurio's kafkasql
storage). With in-memory storage the restarted registry knows no id, and the first schemas
registered after it (a fresh worker's output schemas) take the ids of the old transactions and
labels schemas: the messages already in Kafka then name a score's schema, or none (this test
fails so with ``REGISTRY_STORAGE=mem``). Runs on a private stack: the shared registry is never
restarted.
"""
from __future__ import annotations

import httpx

from app.data.synthetic import generate
from app.records import Score
from app.replay import transaction_id
from app.serialization import subject_for
from app.testing.collector import Collector, settle
from app.testing.faults import WORKER_ENV, dead_letter_count
from app.testing.names import Names
from app.testing.replay import ReplayThread, replay
from app.testing.stack import PrivateStack
from app.testing.wait import wait_until
from app.testing.worker import Worker, assert_healthy

N = 2000
TIME_BASE = 1_700_000_000.0  # event_time = TIME_BASE + the row's Time: what each score must carry back


def latest_ids(registry: str, subjects: list[str]) -> dict[str, int]:
    """The schema id of each subject's latest version (None for a subject the registry does not know)."""
    return {s: httpx.get(f"{registry}/subjects/{s}/versions/latest", timeout=10).json().get("id") for s in subjects}


def test_fresh_worker_reads_everything_after_a_registry_restart_mid_stream(tmp_path):
    stack = PrivateStack(tmp_path / "stack")
    names = Names("regrestart")
    worker = None
    try:
        stack.start("kafka")
        stack.start("registry")
        rows = generate(N, seed=61)
        half = N // 2
        first = ReplayThread(names, rows[:half], broker=stack.broker, registry=stack.registry, rate=100.0,
                             id_prefix="rr", time_base=TIME_BASE)
        first.start()
        inputs = [subject_for(names.transactions), subject_for(names.labels)]
        wait_until(lambda: not first.is_alive()
                   or set(inputs) <= set(httpx.get(f"{stack.registry}/subjects", timeout=10).json()), 60,
                   "the replay registered its schemas")
        before = latest_ids(stack.registry, inputs)
        schemas = {i: httpx.get(f"{stack.registry}/schemas/ids/{i}", timeout=10).json()["schema"] for i in before.values()}

        assert first.is_alive(), "the replay ended before the registry's restart"
        stack.stop("registry")  # the replay goes on with the ids it has
        stack.start("registry")
        sent_first = first.result(120)
        assert latest_ids(stack.registry, inputs) == before
        assert {i: httpx.get(f"{stack.registry}/schemas/ids/{i}", timeout=10).json()["schema"] for i in before.values()} == schemas

        # a worker never seen before (its own application id, so it reads the topics from the
        # beginning): its output schemas are the first ones registered since the restart
        env = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": stack.broker, "FRAUD_SCHEMA_REGISTRY_URL": stack.registry}
        worker = Worker(names, tmp_path / "fresh", env, name="fresh").start(120)
        output_ids = latest_ids(stack.registry, [subject_for(names.scores)])
        assert not set(output_ids.values()) & set(before.values()), (output_ids, before)

        # then a new producer registers the input schemas again: the same ids come back
        sent_second = replay(names, rows[half:], broker=stack.broker, registry=stack.registry, id_prefix="rr",
                             start_index=half, keep_ids=True, time_base=TIME_BASE)
        assert latest_ids(stack.registry, inputs) == before
        ids = sent_first.ids + sent_second.ids
        assert len(set(ids)) == N
        with Collector(names.scores, Score, broker=stack.broker, registry=stack.registry) as scores:
            wait_until(lambda: scores.covers(ids) or not worker.alive() or worker.metric("fraud_dead_letters_total") > 0,
                       180, "every transaction scored (or one dead-lettered, or the worker gone)")
            settle(scores, quiet_s=2.0)
        assert_healthy(worker)
        assert worker.metric("fraud_dead_letters_total") == 0, worker.log_tail()
        assert dead_letter_count(names, stack.broker) == 0
        assert scores.ids() == set(ids)
        expected = {transaction_id("rr", i): TIME_BASE + float(row["Time"]) for i, row in enumerate(rows)}
        misread = [s for s in scores.values if s["event_time"] != expected[s["transaction_id"]]]
        assert not misread, misread[:3]
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()
