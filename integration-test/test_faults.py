"""Faults during a replay lose nothing: every transaction sent gets at least one score, no worker or
agent dies, and nothing valid ends on dead-letters. Scenarios in :mod:`app.testing.faults`.

Broker faults run on a private Kafka started for the test; registry faults cut a proxy between the
worker and the registry. The shared stack is never stopped.
"""
from __future__ import annotations

from app.process import free_port
from app.testing import faults
from app.testing.names import Names
from app.testing.wait import wait_until
from app.testing.worker import Worker


def check_nothing_lost(result: faults.FaultResult) -> None:
    assert result.sent > 0
    assert result.lost == 0, result
    assert result.scored == result.sent, result
    assert result.dead_letters == 0, result
    assert result.recovery_s >= 0, result


def test_kill_minus_9_then_restart_scores_every_transaction(stack, tmp_path):
    result = faults.kill_and_restart(tmp_path, n=3000, rate=400)
    check_nothing_lost(result)
    # at-least-once: what the killed worker had not committed (or committed after its last checkpoint)
    # is scored again, and counted as duplicates


def test_broker_stop_and_start_mid_stream_loses_nothing(stack, tmp_path):
    result = faults.broker_restart(tmp_path, n=6000, down_s=5.0)
    check_nothing_lost(result)
    # the broker went away while the worker still had a backlog to score
    assert result.notes["scored_before_stop"] < result.sent // 2


def test_registry_down_at_start_worker_retries_then_scores(stack, tmp_path):
    result = faults.registry_down_at_start(tmp_path, n=1000, down_s=4.0)
    check_nothing_lost(result)
    assert result.notes["retries"] >= 2
    assert "schema registry at" in result.notes["log_line"] and "retrying in" in result.notes["log_line"]


def test_registry_never_up_worker_exits_with_a_clear_error(stack, tmp_path):
    names = Names("registrynever")
    nothing = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    worker = Worker(names, tmp_path / "w", {**faults.WORKER_ENV, "FRAUD_SCHEMA_REGISTRY_URL": nothing,
                                            "FRAUD_REGISTRY_WAIT_S": "3"})
    worker.launch()
    try:
        wait_until(lambda: not worker.alive(), 90, "the worker gives up")
        assert worker.proc.returncode != 0
        log = worker.log_text()
        assert log.count("not reachable") >= 2, log[-3000:]  # it retried, saying so
        assert f"schema registry at {nothing} not reachable after 3s" in log, log[-3000:]
    finally:
        worker.stop()


def test_registry_down_mid_stream_cached_schemas_keep_scoring(stack, tmp_path):
    result = faults.registry_down_mid_stream(tmp_path, n=2000)
    check_nothing_lost(result)
    assert result.notes["scored_while_down"] == result.sent // 2
    assert result.duplicates == 0


# The survivor used to stop reading now and then after the rebalance (its log ended at "Worker ready",
# its lag stayed above 0: 4 of 15 runs on one day): Faust skipped a backlog fetched for partitions
# paused during the recovery (see app/compat/faust/fetching.py). A stall now fails the test as `WorkerStalled`.
def test_failover_survivor_takes_partitions_and_their_models(stack, tmp_path):
    checkpoint_every = 200
    result = faults.failover(tmp_path, n=4000, rate=250, checkpoint_every=checkpoint_every)
    check_nothing_lost(result)
    assert result.notes["victim_partitions"]
    for partition, handoff in result.notes["handoff"].items():
        # the survivor's model for a taken-over partition resumes from its checkpoint, not from 0
        assert handoff["learned_at_takeover"] is not None, (partition, handoff)
        assert checkpoint_every <= handoff["learned_at_takeover"] <= handoff["learned_before_kill"] + 1, (partition, handoff)
