"""Online learning on the real broker: parity with a plain River loop, delayed labels, restart."""
from __future__ import annotations

import functools
import re
import time

import settings
from app import configured
from app.data import ensure_creditcard_csv, iter_rows
from app.data.synthetic import generate
from app.learning import OnlineLearner, build_model
from app.records import FEATURE_NAMES, Label, Score
from app.replay import transaction_id
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.testing.kafka import produce_raw, read
from app.testing.replay import replay
from app.testing.stack import REGISTRY
from app.testing.worker import wait_for

PARITY_ROWS = 20_000
SMALL_MODEL = {"FRAUD_AGENTS": "scoring", "FRAUD_ARF_TREES": "3"}



def test_scores_equal_a_plain_river_loop(make_worker, names):
    """The first 20,000 ULB rows, in-event labels: the same probability per transaction as a loop."""
    worker = make_worker(SMALL_MODEL)
    rows = list(iter_rows(ensure_creditcard_csv(), limit=PARITY_ROWS))
    replay(names, rows, labels="in-event")

    params = {**configured.model_params(settings), "trees": 3}
    learner = OnlineLearner(functools.partial(build_model, **params))
    expected = []
    for row in rows:
        x = {name: float(row[name]) for name in FEATURE_NAMES}
        expected.append(learner.predict_proba(x))
        learner.learn(x, int(row["Class"]))

    scores = read(names.scores, Score, expect=PARITY_ROWS, timeout_s=240)
    by_id = {value["transaction_id"]: value for _, value, _, _ in scores}
    assert len(scores) == len(by_id) == PARITY_ROWS, worker.log_tail()
    worst = max(abs(by_id[transaction_id("tx", i)]["fraud_probability"] - p) for i, p in enumerate(expected))
    assert worst <= 1e-9
    assert sum(p > 0 for p in expected) > PARITY_ROWS // 2  # the comparison is not between zeros
    # each score says how much its model had learned: predict first, then learn
    assert [by_id[transaction_id("tx", i)]["events_learned"] for i in (0, 1, 999)] == [0, 1, 999]
    wait_for(worker, lambda: worker.metric("fraud_model_events_learned") == PARITY_ROWS, 30, "events learned")


def test_delayed_labels_are_learned_exactly_once(make_worker, names):
    """Labels 1,000 events late: each learned once; unknown ids counted; the counts are metrics."""
    worker = make_worker({**SMALL_MODEL, "FRAUD_PREQUENTIAL_REPORT_INTERVAL_S": "1"})
    rows = generate(4000, seed=11)
    sent = replay(names, rows, labels="delayed", label_delay_events=1000)
    assert sent.labels == 4000
    codec = ConfluentAvroCodec(make_registry_client(REGISTRY), names.labels, Label.avro_schema_to_python())
    produce_raw(names.labels, [
        (f"nobody-{i}".encode(), codec.dumps({"transaction_id": f"nobody-{i}", "label": 0, "event_time": 0.0,
                                               "label_time": 0.0}))
        for i in range(7)
    ])

    scores = read(names.scores, Score, expect=4000, timeout_s=120)
    assert len({v["transaction_id"] for _, v, _, _ in scores}) == 4000
    assert all(v["label"] is None for _, v, _, _ in scores)  # the transactions carried no label
    wait_for(worker, lambda: worker.metric("fraud_labels_total", outcome="unknown") == 7, 60, "unknown labels")
    # a label that came before the worker had scored its transaction (the replay runs ahead of it) was
    # parked, and learned when the transaction was
    wait_for(worker, lambda: worker.metric("fraud_labels_total", outcome="learned")
             + worker.metric("fraud_parked_labels_total", event="learned") == 4000, 60, "learned labels")
    assert worker.metric("fraud_model_events_learned") == 4000
    assert worker.metric("fraud_labels_pending") == 0
    assert worker.metric("fraud_labels_total", outcome="duplicate") == 0
    assert worker.metric("fraud_labels_total", outcome="expired") == 0
    # the model learned while scoring: later scores were made by a model that had learned more. When
    # the last transaction is scored, at most 3,000 labels have been sent (each 1,000 transactions
    # after its own); how many the labels agent has learned by then depends on how the two agents
    # were scheduled (seen: 1,935 and, in earlier runs, over 2,000), so the test asks for a third of
    # the 3,000: enough to show learning while scoring, without depending on the scheduling
    learned_at = [v["events_learned"] for _, v, _, _ in sorted(scores, key=lambda s: s[3])]
    assert learned_at[0] == 0 and learned_at[-1] >= 1000
    wait_for(worker, lambda: worker.metric("fraud_prequential_metric", metric="count", window="cumulative") == 4000,
             30, "prequential count")
    assert 0.5 < worker.metric("fraud_prequential_metric", metric="roc_auc", window="cumulative") <= 1.0


def test_labels_of_expired_transactions_are_counted(make_worker, names):
    """At most 300 transactions wait for a label: labels sent after all 1,500 were scored find the
    oldest 1,200 expired and the newest 300 pending."""
    worker = make_worker({**SMALL_MODEL, "FRAUD_PENDING_MAX": "300"})
    rows = generate(1500, seed=12)
    sent = replay(names, rows, labels="none", keep_ids=True)
    read(names.scores, Score, expect=1500, timeout_s=90)
    wait_for(worker, lambda: worker.metric("fraud_labels_pending") == 300, 30, "300 pending")
    codec = ConfluentAvroCodec(make_registry_client(REGISTRY), names.labels, Label.avro_schema_to_python())
    produce_raw(names.labels, [
        (tid.encode(), codec.dumps({"transaction_id": tid, "label": int(row["Class"]), "event_time": 0.0,
                                    "label_time": 0.0}))
        for tid, row in zip(sent.ids, rows)
    ])
    wait_for(worker, lambda: worker.metric("fraud_labels_total") == 1500, 90, "every label")
    assert worker.metric("fraud_labels_total", outcome="expired") == 1200
    assert worker.metric("fraud_labels_total", outcome="learned") == 300
    assert worker.metric("fraud_labels_pending") == 0
    assert worker.metric("fraud_model_events_learned") == 300


def test_restart_after_kill_resumes_from_the_checkpoint(make_worker, names):
    """kill -9 mid-stream, start again: every transaction scored (duplicates allowed), the model
    resumes from its checkpoint and ends up having learned each event exactly once."""
    env = {**SMALL_MODEL, "FRAUD_CHECKPOINT_EVERY_EVENTS": "500"}
    first = make_worker(env, name="first")
    n = 6000
    replay(names, generate(n, seed=13), labels="in-event")
    wait_for(first, lambda: first.metric("fraud_checkpoints_total") >= 2, 120, "two checkpoints")
    assert first.metric("fraud_model_events_learned") < n, "the first worker finished before the kill"
    first.kill()
    killed_at = time.time()

    # the group waits for the killed member's session to time out before it assigns the partition
    second = make_worker(env, name="second", start=False).start(timeout_s=150)
    deadline = time.monotonic() + 180
    while True:  # duplicates come too: read until every id is there
        scores = [v for _, v, _, _ in read(names.scores, Score, timeout_s=60, idle_s=3)]
        ids = [v["transaction_id"] for v in scores]
        if len(set(ids)) >= n or time.monotonic() > deadline:
            break
    assert set(ids) == {transaction_id("tx", i) for i in range(n)}, second.log_tail()  # none lost
    duplicates = len(ids) - len(set(ids))
    after = [v for v in scores if v["processing_time"] >= killed_at]
    assert after, "the second worker scored nothing"
    restored = min(v["events_learned"] for v in after)
    print(f"restart: {duplicates} duplicate scores; the restored model had learned {restored} events")
    assert "restored HostedLearner" in second.log_text(), second.log_tail()
    assert restored >= 500  # the checkpointed model, not a fresh one
    # from the checkpoint on, every event is learned exactly once: those committed after the
    # checkpoint are read back, those scored again are not learned again
    wait_for(second, lambda: second.metric("fraud_model_events_learned") >= n, 60, "learning to go on")
    time.sleep(2)
    assert second.metric("fraud_model_events_learned") == n, second.log_tail()
    logged = re.findall(r"the model caught up on (\d+) events of \S+ committed after its checkpoint", second.log_text())
    assert second.metric("fraud_caught_up_events_total", state="model") == sum(int(c) for c in logged)


def test_a_lost_model_process_stops_the_worker_and_a_restart_resumes_from_the_checkpoint(make_worker, names):
    """kill -9 the model process: the worker exits at once (code 70, nothing unsent acknowledged);
    started again, it scores every transaction and learns each event exactly once."""
    import os
    import signal

    env = {**SMALL_MODEL, "FRAUD_CHECKPOINT_EVERY_EVENTS": "500"}
    first = make_worker(env, name="first")
    n = 4000
    replay(names, generate(n, seed=14), labels="in-event")
    wait_for(first, lambda: first.metric("fraud_checkpoints_total") >= 1, 120, "a checkpoint")
    model_processes = first.children()
    assert len(model_processes) == 1, model_processes
    os.kill(model_processes[0], signal.SIGKILL)
    assert first.proc.wait(timeout=30) == 70, first.log_tail()
    assert "the model process exited" in first.log_text()

    second = make_worker(env, name="second", start=False).start(timeout_s=150)
    deadline = time.monotonic() + 180
    while True:
        ids = {v["transaction_id"] for _, v, _, _ in read(names.scores, Score, timeout_s=60, idle_s=3)}
        if len(ids) >= n or time.monotonic() > deadline:
            break
    assert ids == {transaction_id("tx", i) for i in range(n)}, second.log_tail()
    wait_for(second, lambda: second.metric("fraud_model_events_learned") >= n, 60, "learning to go on")
    time.sleep(2)
    assert second.metric("fraud_model_events_learned") == n, second.log_tail()
