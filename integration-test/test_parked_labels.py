"""Labels sent long before their transactions, against a real worker: parked, then each learned
exactly once when its transaction is scored, across a kill -9 and a restart too."""
from __future__ import annotations

import time

from app.data.synthetic import generate
from app.records import Label, Score, Transaction
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.testing.kafka import produce_raw, read
from app.testing.stack import REGISTRY
from app.testing.worker import wait_for

AHEAD = 5000  # transactions between a label and its own
N = 1000  # labelled transactions
ENV = {"FRAUD_AGENTS": "scoring", "FRAUD_MODEL_KIND": "lr", "FRAUD_CHECKPOINT_EVERY_EVENTS": "300"}


def test_labels_sent_5000_transactions_before_their_own_are_each_learned_once(make_worker, names):
    first = make_worker(ENV, name="first")
    client = make_registry_client(REGISTRY)
    transactions = ConfluentAvroCodec(client, names.transactions, Transaction.avro_schema_to_python())
    labels = ConfluentAvroCodec(client, names.labels, Label.avro_schema_to_python())
    rows = generate(AHEAD + N, seed=21)
    values = [to_transaction(row, f"tx-{i}", 1.7e9 + i, with_label=False) for i, row in enumerate(rows)]

    def send(indices) -> None:
        produce_raw(names.transactions, [(f"tx-{i}".encode(), transactions.dumps(values[i])) for i in indices])

    # the labels of transactions AHEAD..AHEAD+N-1 first, then AHEAD transactions without a label before them
    produce_raw(names.labels, [
        (f"tx-{i}".encode(), labels.dumps({"transaction_id": f"tx-{i}", "label": int(rows[i]["Class"]),
                                           "event_time": values[i]["event_time"]}))
        for i in range(AHEAD, AHEAD + N)])
    wait_for(first, lambda: first.metric("fraud_parked_labels_total", event="parked") == N, 90, "parked labels")
    assert first.metric("fraud_labels_parked") == N and first.metric("fraud_model_events_learned") == 0

    half = AHEAD + N // 2
    send(range(half))
    read(names.scores, Score, expect=half, timeout_s=180)
    wait_for(first, lambda: first.metric("fraud_model_events_learned") == N // 2, 60, "the first half learned")
    assert first.metric("fraud_parked_labels_total", event="learned") == N // 2
    assert first.metric("fraud_labels_total", outcome="learned") == 0  # none found a waiting transaction
    assert first.metric("fraud_checkpoints_total") >= 1
    first.kill()  # parked labels learned since its last checkpoint are learned again from that checkpoint

    second = make_worker(ENV, name="second", start=False).start(timeout_s=150)
    send(range(half, AHEAD + N))
    deadline = time.monotonic() + 180
    while True:  # duplicates may come (at-least-once): read until every id is there
        ids = {v["transaction_id"] for _, v, _, _ in read(names.scores, Score, timeout_s=60, idle_s=3)}
        if len(ids) >= AHEAD + N or time.monotonic() > deadline:
            break
    assert ids == {f"tx-{i}" for i in range(AHEAD + N)}, second.log_tail()
    wait_for(second, lambda: second.metric("fraud_model_events_learned") >= N, 90, "every label learned")
    time.sleep(2)
    assert second.metric("fraud_model_events_learned") == N, second.log_tail()  # each exactly once
    assert second.metric("fraud_parked_labels_total", event="expired") == 0
    # what stays parked: labels whose transaction the first worker learned and checkpointed but whose
    # tombstones the kill lost; never learned again, they go when their transaction time expires
    assert second.metric("fraud_labels_parked") < N // 2
