"""Fault injection against real workers: each scenario replays transactions, injects one fault and
counts what came out.

A scenario (:data:`SCENARIOS`: ``folder`` for its workers' state, ``n`` events) returns a
:class:`FaultResult`: events sent, distinct transactions scored, duplicate scores, transactions never
scored (lost), and the recovery time in seconds, measured from the moment named in
``recovery_from`` to the first score made afterwards (``processing_time`` of the scores, a wall
clock). Used by ``integration-test/test_faults.py`` (asserts) and ``benchmarks/faults.py`` (table).

Broker faults run on a private Kafka (:class:`~app.testing.stack.PrivateStack`, ``infra/stack.sh``
with its own folder and ports); registry faults put a :class:`~app.testing.proxy.TcpProxy` between
the worker and the registry and switch it off, so the shared stack is never stopped.

>>> r = tally("demo", ["a", "b", "c"], [{"transaction_id": t} for t in "aab"], 1.5, "the kill")
>>> (r.sent, r.scored, r.duplicates, r.lost)
(3, 2, 1, 1)
"""
from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.testing.collector import Collector, settle
from app.testing.kafka import delete_topics, read
from app.testing.names import Names
from app.testing.proxy import TcpProxy, registry_path, registry_upstream
from app.testing.replay import ReplayThread, replay
from app.testing.stack import BROKER, PrivateStack
from app.testing.wait import wait_until
from app.testing.worker import Worker, assert_healthy

# Faust reads these from the environment: a killed worker leaves its consumer group after 10 s
# instead of Faust's default 60 s, so failover and restart finish inside a test's time.
FAST_GROUP = {"FRAUD_BROKER_SESSION_TIMEOUT_S": "10"}
# The fault scenarios are about delivery, not model quality: the fast model keeps the runs short.
WORKER_ENV = {**FAST_GROUP, "FRAUD_MODEL_KIND": "lr"}


class WorkerStalled(TimeoutError):
    """A worker consumes nothing more although its consumer lag is above 0."""


def raise_stall_or(error: TimeoutError, worker: Worker, topic: str, watch_s: float = 12.0) -> None:
    """After a wait timed out: raise :class:`WorkerStalled` if ``worker`` reads nothing of ``topic`` for
    ``watch_s`` seconds while its lag there is above 0 (a stall), else re-raise ``error`` (the worker
    read everything and something is still missing: a loss)."""
    before = worker.metric("fraud_events_in_total", topic=topic)
    time.sleep(watch_s)
    after = worker.metric("fraud_events_in_total", topic=topic)
    lag = worker.metric("fraud_consumer_lag", topic=topic)
    if after == before and lag > 0:
        raise WorkerStalled(f"{error}; {worker.name} read nothing of {topic} in {watch_s:.0f}s with a lag "
                            f"of {lag:.0f}\n{worker.log_tail(30)}") from error
    raise error


@dataclass
class FaultResult:
    """What one scenario sent and what became of it (:func:`tally`); ``notes`` holds the scenario's own
    figures. :meth:`row` is its line under :attr:`HEADER`."""

    fault: str
    sent: int
    scored: int
    duplicates: int
    lost: int
    recovery_s: float
    recovery_from: str
    dead_letters: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def row(self) -> str:
        return (f"{self.fault:<30} {self.sent:>6} {self.scored:>7} {self.duplicates:>10} {self.lost:>5} "
                f"{self.recovery_s:>10.1f}  {self.recovery_from}")

    HEADER = f"{'fault':<30} {'sent':>6} {'scored':>7} {'duplicates':>10} {'lost':>5} {'recovery_s':>10}  recovery measured from"


def tally(fault: str, sent_ids: list[str], scores: list[dict], recovery_s: float, recovery_from: str,
          **notes: Any) -> FaultResult:
    """Count what became of ``sent_ids`` in ``scores``."""
    counts = collections.Counter(s["transaction_id"] for s in scores)
    sent = set(sent_ids)
    return FaultResult(
        fault=fault, sent=len(sent_ids), scored=len(sent & set(counts)),
        duplicates=sum(n - 1 for tid, n in counts.items() if tid in sent),
        lost=len(sent - set(counts)), recovery_s=recovery_s, recovery_from=recovery_from, notes=notes,
    )


def dead_letter_count(names: Names, broker: str = BROKER) -> int:
    """Messages on the test's dead-letter topic (none expected: every fault input is valid)."""
    return len(read(names.dead_letters, None, timeout_s=15, idle_s=1.0, broker=broker))


def first_score_after(scores: list[dict], t: float, partitions: set[int] | None = None) -> dict | None:
    """The earliest score made after wall-clock time ``t`` (optionally from these source partitions)."""
    later = [s for s in scores if s["processing_time"] > t and (partitions is None or s["partition"] in partitions)]
    return min(later, key=lambda s: s["processing_time"]) if later else None


def finish(fault: str, names: Names, worker: Worker, scores: Collector, sent_ids: list[str], since: float | None,
           recovery_from: str, *, quiet_s: float = 3.0, partitions: set[int] | None = None,
           recovery_s: float | None = None, broker: str = BROKER, **notes: Any) -> FaultResult:
    """The end of every scenario, once every id is scored: let late duplicates arrive, check the
    worker, measure the recovery (first score after ``since``, unless ``recovery_s`` is given), tally
    and count the dead letters."""
    settle(scores, quiet_s=quiet_s)
    assert_healthy(worker)
    if recovery_s is None:
        recovery_s = first_score_after(scores.values, since, partitions)["processing_time"] - since
    result = tally(fault, sent_ids, scores.values, recovery_s, recovery_from, **notes)
    result.dead_letters = dead_letter_count(names, broker)
    return result


def _rows(n: int, seed: int) -> list:
    from app.data.synthetic import generate

    return generate(n, seed=seed)


def no_fault(folder: Path, n: int = 3000, rate: float = 400.0) -> FaultResult:
    """The baseline: the same replay with nothing going wrong (recovery: from the first send)."""
    from app.records import Score

    names = Names("nofault")
    worker = Worker(names, folder / "w", WORKER_ENV)
    try:
        worker.start(120)
        with Collector(names.scores, Score) as scores:
            started = time.time()
            sent = replay(names, _rows(n, 10), rate=rate, id_prefix="nf", keep_ids=True)
            wait_until(lambda: scores.covers(sent.ids), 120, "every transaction scored")
            return finish("none (baseline)", names, worker, scores, sent.ids, started, "the first send", quiet_s=2.0)
    finally:
        worker.stop()
        delete_topics(names)


def kill_and_restart(folder: Path, n: int = 3000, rate: float = 400.0) -> FaultResult:
    """kill -9 of the only worker a third into the replay, then a new worker in its place."""
    from app.records import Score

    names = Names("killrestart")
    workers: list[Worker] = []
    try:
        first = Worker(names, folder / "w1", WORKER_ENV, name="w1").start(120)
        workers.append(first)
        with Collector(names.scores, Score) as scores:
            producer = ReplayThread(names, _rows(n, 11), rate=rate, id_prefix="kr")
            producer.start()
            wait_until(lambda: scores.count() >= n // 3, 120, "a third of the stream scored")
            first.kill()
            killed_at = time.time()
            second = Worker(names, folder / "w2", WORKER_ENV, name="w2")
            workers.append(second)
            second.start(120)
            sent = producer.result()
            wait_until(lambda: scores.covers(sent.ids), 180, "every transaction scored after the restart")
            return finish("kill -9 + restart", names, second, scores, sent.ids, killed_at, "the kill")
    finally:
        for w in workers:
            w.stop()
        delete_topics(names)


def broker_restart(folder: Path, n: int = 3000, down_s: float = 5.0) -> FaultResult:
    """The worker's broker stops while the worker is in the middle of a backlog, stays down ``down_s``,
    comes back; then the rest of the stream is sent. On a private Kafka."""
    from app.records import Score

    stack = PrivateStack(folder / "stack")
    names = Names("brokerrestart")
    worker = None
    try:
        stack.start("kafka")
        env = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": stack.broker}
        worker = Worker(names, folder / "w", env).start(120)
        rows = _rows(n, 12)
        half = n // 2
        with Collector(names.scores, Score, broker=stack.broker) as scores:
            first = replay(names, rows[:half], broker=stack.broker, id_prefix="br", keep_ids=True)
            wait_until(lambda: scores.count() >= half // 4, 120, "a quarter of the first half scored")
            scored_before = len(scores.ids())  # when the stop is issued
            stack.stop("kafka")
            stopped_at = time.monotonic()
            wait_until(lambda: time.monotonic() - stopped_at >= down_s or not worker.alive(), down_s + 5, "outage")
            assert worker.alive(), "the worker died while the broker was down:\n" + worker.log_tail()
            stack.start("kafka")
            back_at = time.time()
            second = replay(names, rows[half:], broker=stack.broker, id_prefix="br", start_index=half, keep_ids=True)
            ids = first.ids + second.ids
            wait_until(lambda: scores.covers(ids), 180, "every transaction scored after the broker came back")
            return finish("broker stop/start", names, worker, scores, ids, back_at, "the broker's restart",
                          broker=stack.broker, down_s=down_s, scored_before_stop=scored_before)
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()


def registry_down_at_start(folder: Path, n: int = 1000, down_s: float = 4.0) -> FaultResult:
    """The worker starts while its registry is unreachable: it says so, retries with backoff, and once
    the registry answers it starts and scores everything."""
    from app.records import Score

    proxy = TcpProxy(registry_upstream())
    names = Names("registrystart")
    env = {**WORKER_ENV, "FRAUD_SCHEMA_REGISTRY_URL": proxy.url + registry_path(), "FRAUD_REGISTRY_WAIT_S": "120"}
    worker = Worker(names, folder / "w", env)
    try:
        worker.launch()
        wait_until(lambda: worker.log_text().count("not reachable") >= 2 or not worker.alive(), 90,
                   "two retry lines in the log")
        assert worker.alive(), worker.log_tail()
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started >= down_s, down_s + 1, "outage")
        assert worker.alive(), worker.log_tail()
        retries = worker.log_text().count("not reachable")
        proxy.up()
        up_at = time.monotonic()
        worker.wait_ready(120)
        ready_s = time.monotonic() - up_at
        with Collector(names.scores, Score) as scores:
            sent = replay(names, _rows(n, 13), id_prefix="rs", keep_ids=True)
            wait_until(lambda: scores.covers(sent.ids), 120, "every transaction scored")
            line = next(x for x in worker.log_text().splitlines() if "not reachable" in x)
            return finish("registry down at start", names, worker, scores, sent.ids, None,
                          "the registry's return (to worker ready)", quiet_s=2.0, recovery_s=ready_s,
                          retries=retries, log_line=line.strip())
    finally:
        worker.stop()
        proxy.down()
        delete_topics(names)


def registry_down_mid_stream(folder: Path, n: int = 2000) -> FaultResult:
    """The registry goes away after the worker has seen the schemas: the rest of the stream is scored
    with the cached schemas while it is down."""
    from app.records import Score

    proxy = TcpProxy(registry_upstream()).up()
    names = Names("registrymid")
    env = {**WORKER_ENV, "FRAUD_SCHEMA_REGISTRY_URL": proxy.url + registry_path()}
    worker = Worker(names, folder / "w", env)
    try:
        worker.start(120)
        rows = _rows(n, 14)
        half = n // 2
        with Collector(names.scores, Score) as scores:
            first = replay(names, rows[:half], id_prefix="rm", keep_ids=True)
            wait_until(lambda: scores.covers(first.ids), 120, "the first half scored")
            proxy.down()
            down_at = time.time()
            second = replay(names, rows[half:], id_prefix="rm", start_index=half, keep_ids=True)
            wait_until(lambda: scores.covers(second.ids), 120, "the second half scored, registry down")
            during = [s for s in scores.values if s["processing_time"] > down_at]
            return finish("registry down mid-stream", names, worker, scores, first.ids + second.ids, down_at,
                          "the registry's stop (stream goes on)", quiet_s=2.0,
                          scored_while_down=len({s["transaction_id"] for s in during}))
    finally:
        worker.stop()
        proxy.down()
        delete_topics(names)


def failover(folder: Path, n: int = 4000, rate: float = 250.0, checkpoint_every: int = 200) -> FaultResult:
    """Two workers share a 4-partition topic; one is killed -9 mid-stream. The survivor takes its
    partitions, restores their models from the checkpoints and scores the rest."""
    from app.admin import ensure_topics
    from app.records import Score

    names = Names("failover")
    asyncio.run(ensure_topics(BROKER, names.topics(), 4))
    env = {**WORKER_ENV, "FRAUD_TOPIC_PARTITIONS": "4", "FRAUD_CHECKPOINT_EVERY_EVENTS": str(checkpoint_every)}
    survivor = Worker(names, folder / "a", env, name="a")
    victim = Worker(names, folder / "b", env, name="b")
    try:
        survivor.start(120)
        victim.start(120)
        with Collector(names.scores, Score) as scores:
            producer = ReplayThread(names, _rows(n, 15), rate=rate, id_prefix="fo")
            producer.start()

            def checkpointed() -> bool:
                mine = _partitions(victim)
                return bool(mine) and survivor.metric("fraud_events_out_total", topic=names.scores) > 0 and all(
                    victim.metric("fraud_checkpoints_total", partition=str(p)) > 0 for p in mine)

            wait_until(checkpointed, 120, "both workers scoring, the one to kill with a checkpoint per partition")
            victim_partitions = _partitions(victim)
            killed_at = time.time()
            victim.kill()
            sent = producer.result(180)
            try:
                wait_until(lambda: scores.covers(sent.ids), 180, "every transaction scored after the failover")
            except TimeoutError as exc:
                raise_stall_or(exc, survivor, names.transactions)
            result = finish("failover (2 workers, 1 killed)", names, survivor, scores, sent.ids, killed_at, "the kill",
                            partitions=victim_partitions, victim_partitions=sorted(victim_partitions))
            handoff = result.notes["handoff"] = {}
            for p in sorted(victim_partitions):
                before = [s for s in scores.values if s["partition"] == p and s["processing_time"] <= killed_at]
                taken = first_score_after(scores.values, killed_at, {p})
                handoff[p] = {"learned_before_kill": max((s["events_learned"] for s in before), default=0),
                              "learned_at_takeover": taken["events_learned"] if taken else None}
            return result
    finally:
        survivor.stop()
        victim.stop()
        delete_topics(names)


def _partitions(worker: Worker) -> set[int]:
    """The source partitions a worker has a live model for (its ``fraud_model_events_learned`` labels)."""
    found = set()
    for line in worker.metrics_text().splitlines():
        if line.startswith("fraud_model_events_learned{"):
            found.add(int(line.split('partition="', 1)[1].split('"', 1)[0]))
    return found


SCENARIOS = {
    "none": no_fault,
    "kill": kill_and_restart,
    "broker": broker_restart,
    "registry-start": registry_down_at_start,
    "registry-mid": registry_down_mid_stream,
    "failover": failover,
}
