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
from app.testing.worker import Worker, assert_healthy, stopped

# Faust reads these from the environment: a killed worker leaves its consumer group after 10 s
# instead of Faust's default 60 s, so failover and restart finish inside a test's time.
FAST_GROUP = {"FRAUD_BROKER_SESSION_TIMEOUT_S": "10"}
# The fault scenarios are about delivery, not model quality: the fast model keeps the runs short.
# the synthetic rows carry card ids: window features off, so that the probes' scores compare with a
# plain loop on the raw fields (app.testing.baseline.plain_loop)
WORKER_ENV = {**FAST_GROUP, "FRAUD_MODEL_KIND": "lr", "FRAUD_WINDOW_FEATURES": "0"}


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
           recovery_from: str, *, wait_s: float | None = None, waiting_for: str = "every transaction scored",
           quiet_s: float = 3.0, partitions: set[int] | None = None, recovery_s: float | None = None,
           broker: str = BROKER, **notes: Any) -> FaultResult:
    """The end of every scenario: with ``wait_s``, wait until every id is scored (``waiting_for``
    names the wait in its timeout, which fails the scenario; without ``wait_s`` the scenario has
    waited in its own way); then let late duplicates arrive, check the worker, measure the recovery
    (first score after ``since``, unless ``recovery_s`` is given), tally and count the dead letters."""
    if wait_s is not None:
        wait_until(lambda: scores.covers(sent_ids), wait_s, waiting_for)
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
            return finish("none (baseline)", names, worker, scores, sent.ids, started, "the first send", wait_s=120,
                          quiet_s=2.0)
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
            return finish("kill -9 + restart", names, second, scores, sent.ids, killed_at, "the kill", wait_s=180,
                          waiting_for="every transaction scored after the restart")
    finally:
        for w in workers:
            w.stop()
        delete_topics(names)


def broker_restart(folder: Path, n: int = 3000, down_s: float = 5.0) -> FaultResult:
    """The worker's broker stops while the worker is in the middle of a backlog, stays down ``down_s``,
    comes back; then the rest of the stream is sent. On a private Kafka. The worker is paused
    (SIGSTOP) while the first half is written, so that it is a backlog whatever the worker's speed,
    and the broker stops once the first tenth of it is scored."""
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
            with stopped(worker.proc.pid):
                first = replay(names, rows[:half], broker=stack.broker, id_prefix="br", keep_ids=True)
            wait_until(lambda: scores.count() >= half // 10, 120, "a tenth of the first half scored", interval_s=0.01)
            scored_before = len(scores.ids())  # when the stop is issued
            stack.stop("kafka")
            stopped_at = time.monotonic()
            wait_until(lambda: time.monotonic() - stopped_at >= down_s or not worker.alive(), down_s + 5, "outage")
            assert worker.alive(), "the worker died while the broker was down:\n" + worker.log_tail()
            stack.start("kafka")
            back_at = time.time()
            second = replay(names, rows[half:], broker=stack.broker, id_prefix="br", start_index=half, keep_ids=True)
            ids = first.ids + second.ids
            return finish("broker stop/start", names, worker, scores, ids, back_at, "the broker's restart", wait_s=180,
                          waiting_for="every transaction scored after the broker came back",
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
            line = next(x for x in worker.log_text().splitlines() if "not reachable" in x)
            return finish("registry down at start", names, worker, scores, sent.ids, None,
                          "the registry's return (to worker ready)", wait_s=120, quiet_s=2.0, recovery_s=ready_s,
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




# --- hardening scenarios: registry restart, refused output, broker down at catch-up, planted state, many kills ---

def _wait_exit(worker: Worker, timeout_s: float) -> int | None:
    """The worker's exit code once it has exited, or None if it still runs after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while worker.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return worker.proc.poll()


def _topic_config(broker: str, topic: str, max_message_bytes: int, create: bool) -> None:
    """Create ``topic`` (1 partition) with ``max.message.bytes``, or set it on the existing topic."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from app.admin import bootstrap_servers

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker))
        await admin.start()
        try:
            config = {"max.message.bytes": str(max_message_bytes)}
            if create:
                await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=config)])
            else:
                await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, config)])
        finally:
            await admin.close()

    asyncio.run(go())


def registry_restart(folder: Path, n: int = 600, rate: float = 100.0) -> FaultResult:
    """The registry (of a private stack, keeping its schemas in that stack's Kafka) restarts while the
    first half is sent; then a worker never seen before reads the topics from the beginning and the
    second half is sent. ``misread`` counts scores whose ``event_time`` is not the one of the
    transaction sent under that id (a schema id naming another schema after the restart)."""
    import httpx

    from app.records import Score
    from app.replay import transaction_id
    from app.serialization import subject_for

    time_base = 1_700_000_000.0
    stack = PrivateStack(folder / "stack")
    names = Names("regrestart")
    worker = None
    try:
        stack.start("kafka")
        stack.start("registry")
        rows = _rows(n, 61)
        half = n // 2
        first = ReplayThread(names, rows[:half], broker=stack.broker, registry=stack.registry, rate=rate,
                             id_prefix="rr", time_base=time_base)
        first.start()
        inputs = {subject_for(names.transactions), subject_for(names.labels)}
        wait_until(lambda: not first.is_alive()
                   or inputs <= set(httpx.get(f"{stack.registry}/subjects", timeout=10).json()), 60,
                   "the replay registered its schemas")
        restarted_while_sending = first.is_alive()
        stack.stop("registry")  # the replay goes on with the ids it has
        stack.start("registry")
        back_at = time.time()
        sent_first = first.result(300)
        env = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": stack.broker, "FRAUD_SCHEMA_REGISTRY_URL": stack.registry}
        worker = Worker(names, folder / "fresh", env, name="fresh").start(180)
        sent_second = replay(names, rows[half:], broker=stack.broker, registry=stack.registry, id_prefix="rr",
                             start_index=half, keep_ids=True, time_base=time_base)
        ids = sent_first.ids + sent_second.ids
        with Collector(names.scores, Score, broker=stack.broker, registry=stack.registry) as scores:
            try:
                wait_until(lambda: scores.covers(ids) or not worker.alive(), 180, "every transaction scored")
            except TimeoutError:
                pass  # counted as lost below
            expected = {transaction_id("rr", i): time_base + float(row["Time"]) for i, row in enumerate(rows)}
            misread = sum(1 for s in scores.values if s["event_time"] != expected.get(s["transaction_id"]))
            return finish("registry restart, fresh worker", names, worker, scores, ids, back_at,
                          "the registry's restart", quiet_s=2.0, broker=stack.broker, misread=misread,
                          restarted_while_sending=restarted_while_sending,
                          dead_lettered=worker.metric("fraud_dead_letters_total"))
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()


def refused_record(folder: Path, n: int = 200) -> FaultResult:
    """The broker refuses the worker's scores (the scores topic takes records of at most 64 bytes): the
    worker exits with code 74 before acknowledging its input; restarted once the topic takes Kafka's
    default size, it scores every transaction. ``exit_code`` is in the notes."""
    from app.outputs import SEND_FAILED_EXIT_CODE
    from app.records import Score

    names = Names("refused")
    worker = Worker(names, folder / "w", WORKER_ENV)
    try:
        _topic_config(BROKER, names.scores, 64, create=True)
        worker.start(120)
        sent = replay(names, _rows(n, 3), id_prefix="rf", keep_ids=True)
        code = _wait_exit(worker, 120)
        if code != SEND_FAILED_EXIT_CODE:
            raise AssertionError(f"the worker's exit code is {code}, not {SEND_FAILED_EXIT_CODE}:\n{worker.log_tail()}")
        _topic_config(BROKER, names.scores, 1048588, create=False)  # Kafka's default max.message.bytes
        restarted_at = time.time()
        worker.start(120)
        with Collector(names.scores, Score) as scores:
            return finish("refused record, restart", names, worker, scores, sent.ids, restarted_at,
                          "the restart", wait_s=180, waiting_for="every transaction scored after the restart",
                          quiet_s=2.0, exit_code=code)
    finally:
        worker.stop()
        delete_topics(names)


def broker_down_at_catch_up(folder: Path, n: int = 1000, down_s: float = 8.0,
                            checkpoint_every: int = 100) -> FaultResult:
    """A worker is killed -9 after a checkpoint, its broker (a private one) stops, the worker restarts
    (it must catch up from the checkpoint) while the broker is down, the broker comes back ``down_s``
    later; then the rest of the stream is sent. A worker that exits while the broker is down is started
    again once the broker is back, as a supervisor would: ``exit_while_down`` is its exit code (None if
    it kept running) and ``exit_log`` the log line of its error."""
    from app.records import Score

    stack = PrivateStack(folder / "stack")
    names = Names("catchup")
    env = {**WORKER_ENV, "FRAUD_CHECKPOINT_EVERY_EVENTS": str(checkpoint_every)}
    worker = None
    try:
        stack.start("kafka")
        env["FRAUD_KAFKA_BROKER"] = stack.broker
        worker = Worker(names, folder / "w", env).start(120)
        rows = _rows(n, 16)
        half = n // 2
        with Collector(names.scores, Score, broker=stack.broker) as scores:
            first = replay(names, rows[:half], broker=stack.broker, id_prefix="cu", keep_ids=True)
            wait_until(lambda: worker.metric("fraud_checkpoints_total") >= 1 and scores.count() >= half // 2, 120,
                       "a checkpoint and half of the first half scored")
            worker.kill()
            stack.stop("kafka")
            worker.launch()  # the same folder, as a restarted service
            time.sleep(down_s)
            exit_while_down = worker.proc.poll()
            stack.start("kafka")
            back_at = time.time()
            exit_log = None
            if worker.proc.poll() is not None:
                exit_while_down = worker.proc.returncode
                exit_log = next((line.strip() for line in worker.run_log_text().splitlines() if "[ERROR]" in line
                                 and "Error:" in line), None)
                worker.launch()  # as a supervisor restarts an exited service
            worker.wait_ready(180)
            second = replay(names, rows[half:], broker=stack.broker, id_prefix="cu", start_index=half, keep_ids=True)
            ids = first.ids + second.ids
            try:
                wait_until(lambda: scores.covers(ids), 180, "every transaction scored after the broker came back")
            except TimeoutError:
                pass  # counted as lost below
            return finish("broker down at catch-up", names, worker, scores, ids, back_at, "the broker's start",
                          broker=stack.broker, down_s=down_s, exit_while_down=exit_while_down, exit_log=exit_log)
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()


class CreatesFile:
    """Unpickling this opens ``path`` for writing: the file exists if anything unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def planted_changelog(folder: Path, n: int = 600, more: int = 200) -> FaultResult:
    """An unsigned model checkpoint whose pickle would create a file is written to the model's changelog
    between two runs of a worker (with ``FRAUD_STATE_KEY``); the second run refuses it and scores on.
    ``planted_ran`` is 1 if the file exists afterwards."""
    import pickle

    import settings
    from app.records import Score
    from app.state.checkpointed import envelope
    from app.testing.kafka import produce_raw
    from app.testing.worker import wait_committed

    names = Names("planted")
    env = {**WORKER_ENV, "FRAUD_STATE_KEY": "fault scenario state key, 32 bytes+",
           "FRAUD_CHECKPOINT_EVERY_EVENTS": "200"}
    worker = Worker(names, folder / "w", env)
    marker = folder / "planted-ran"
    try:
        worker.start(120)
        rows = _rows(n + more, 17)
        first = replay(names, rows[:n], labels="in-event", id_prefix="pl", keep_ids=True)
        wait_committed(worker, names.transactions, timeout_s=240)
        worker.stop()
        planted = envelope({"transactions": 10**9, "labels": 10**9},
                           b"FRDL" + pickle.dumps({"format": 1, "model": CreatesFile(str(marker))}))
        produce_raw(f"{names.app_id}-{settings.CHECKPOINT_TABLE}-changelog", [(b"0", planted)])
        restarted_at = time.time()
        worker.start(150)
        second = replay(names, rows[n:], labels="in-event", id_prefix="pl", start_index=n, keep_ids=True)
        ids = first.ids + second.ids
        with Collector(names.scores, Score) as scores:
            wait_until(lambda: scores.covers(ids), 180, "every transaction scored after the restart")
            return finish("planted changelog record", names, worker, scores, ids, restarted_at, "the restart",
                          quiet_s=2.0, planted_ran=int(marker.exists()),
                          refused=worker.metric("fraud_state_rejected_total", state="model"))
    finally:
        worker.stop()
        delete_topics(names)


def kill_storm(folder: Path, n: int = 3000, kills: int = 20, rate: float = 100.0, probe: int = 200,
               seed: int = 7, min_s: float = 2.0, max_s: float = 15.0, checkpoint_every: int = 200) -> FaultResult:
    """Transactions with their labels in the event go to one partition while the worker is killed -9
    and restarted ``kills`` times, after random intervals (``min_s``..``max_s``, a ``seed``-ed RNG);
    a kill may come while the worker starts or catches up. Then every transaction must be scored, each
    learned once: ``label_learned_twice`` is the model's ``events_learned`` beyond the distinct
    transactions sent (``learned_missing`` the ones short of it). Finally ``probe`` more transactions
    are sent; their scores are compared with what a plain predict-then-learn loop over every row in
    order gives them (``max_abs_diff``): exactly-once learning in order gives the same model."""
    import random

    import numpy as np

    import settings
    from app import configured
    from app.records import Score
    from app.testing.baseline import plain_loop

    rng = random.Random(seed)
    names = Names("killstorm")
    env = {**WORKER_ENV, "FRAUD_CHECKPOINT_EVERY_EVENTS": str(checkpoint_every)}
    worker = Worker(names, folder / "w", env)
    rows = _rows(n + probe, 18)
    intervals = []
    try:
        worker.start(120)
        with Collector(names.scores, Score) as scores:
            producer = ReplayThread(names, rows[:n], rate=rate, labels="in-event", id_prefix="ks")
            producer.start()
            for _ in range(kills):
                wait_s = rng.uniform(min_s, max_s)
                intervals.append(round(wait_s, 1))
                time.sleep(wait_s)
                worker.kill()
                worker.launch()
            last_kill = time.time()
            worker.wait_ready(180)
            sent = producer.result(max(120.0, n / rate * 3))
            try:
                wait_until(lambda: scores.covers(sent.ids), 300, "every transaction scored after the last restart")
                wait_until(lambda: worker.metric("fraud_model_events_learned") >= n, 60, "every label learned")
            except TimeoutError:
                pass  # counted below
            learned = int(worker.metric("fraud_model_events_learned"))
            settle(scores, quiet_s=2.0)
            probe_sent = replay(names, rows[n:], labels="in-event", id_prefix="ks", start_index=n, keep_ids=True)
            wait_until(lambda: scores.covers(probe_sent.ids), 180, "every probe transaction scored")
            ids = sent.ids + probe_sent.ids
            result = finish(f"kill -9 x{kills}, labels in event", names, worker, scores, ids, last_kill,
                            "the last kill", quiet_s=2.0)
            final = {}
            for s in sorted(scores.values, key=lambda s: s["_offset"]):
                if s["transaction_id"] in set(probe_sent.ids):
                    final.setdefault(s["transaction_id"], s)  # the first score of each probe transaction
            params = {**configured.model_params(settings), "kind": WORKER_ENV["FRAUD_MODEL_KIND"]}
            expected = plain_loop(rows, params)["p"][n:]
            got = np.array([final[tid]["fraud_probability"] for tid in probe_sent.ids])
            result.notes.update(
                kills=kills, intervals_s=intervals, learned_before_probe=learned,
                label_learned_twice=max(0, learned - n), learned_missing=max(0, n - learned),
                max_abs_diff=float(np.max(np.abs(got - expected))),
                probe_events_learned_first=final[probe_sent.ids[0]]["events_learned"])
            return result
    finally:
        worker.stop()
        delete_topics(names)


SCENARIOS = {
    "none": no_fault,
    "kill": kill_and_restart,
    "broker": broker_restart,
    "registry-start": registry_down_at_start,
    "registry-mid": registry_down_mid_stream,
    "failover": failover,
    "registry-restart": registry_restart,
    "refused": refused_record,
    "broker-catch-up": broker_down_at_catch_up,
    "planted": planted_changelog,
    "kills": kill_storm,
}
