"""Labels that must not poison a model, keys that are not the transaction id, and topics that are
not co-partitioned, against a real worker."""
from __future__ import annotations

import asyncio
import time

from app.admin import ensure_topics
from app.data.synthetic import generate
from app.records import DeadLetter, Label, Score, Transaction
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.testing.kafka import produce_raw, read
from app.testing.stack import BROKER, REGISTRY
from app.testing.worker import wait_for

N = 300



def test_labels_are_validated_and_matched_by_the_payload_id(make_worker, names):
    """Transactions and labels with null or unrelated Kafka keys are matched by the transaction id
    in their payload; labels other than 0 or 1 are `invalid-value` dead letters, never learned."""
    worker = make_worker({"FRAUD_AGENTS": "scoring", "FRAUD_ARF_TREES": "3"})
    client = make_registry_client(REGISTRY)
    transactions = ConfluentAvroCodec(client, names.transactions, Transaction.avro_schema_to_python())
    labels = ConfluentAvroCodec(client, names.labels, Label.avro_schema_to_python())
    rows = generate(N, seed=5)
    values = [to_transaction(row, f"tx-{i}", 1.7e9 + i, with_label=False) for i, row in enumerate(rows)]
    keys = [None if i % 3 == 0 else (b"not-the-id" if i % 3 == 1 else f"tx-{i}".encode()) for i in range(N)]
    produce_raw(names.transactions, [(key, transactions.dumps(value)) for key, value in zip(keys, values)])
    read(names.scores, Score, expect=N, timeout_s=120)

    bad = [labels.dumps({"transaction_id": "tx-0", "label": 7, "event_time": values[0]["event_time"]}),
           labels.dumps({"transaction_id": "tx-1", "label": -1, "event_time": values[1]["event_time"]})]
    good = [(key, labels.dumps({"transaction_id": f"tx-{i}", "label": int(row["Class"]),
                                "event_time": values[i]["event_time"]}))
            for i, (key, row) in enumerate(zip(keys, rows))]
    produce_raw(names.labels, [(b"bad-0", bad[0]), (None, bad[1])] + good)

    letters = read(names.dead_letters, DeadLetter, expect=2, timeout_s=60, idle_s=60)
    assert sorted((v["reason"], v["offset"]) for _, v, _, _ in letters) == [("invalid-value", 0), ("invalid-value", 1)]
    assert "label is 7" in letters[0][1]["error"] + letters[1][1]["error"]
    wait_for(worker, lambda: worker.metric("fraud_labels_total", outcome="learned") == N, 60, "learned labels")
    assert worker.metric("fraud_labels_total", outcome="unknown") == 0
    assert worker.metric("fraud_model_events_learned") == N
    scores = read(names.scores, Score, expect=N, timeout_s=30)
    assert sorted(key for key, _, _, _ in scores) == sorted(f"tx-{i}".encode() for i in range(N))


def test_a_worker_refuses_labels_not_co_partitioned_with_transactions(make_worker, names):
    asyncio.run(ensure_topics(BROKER, [names.transactions], partitions=1))
    asyncio.run(ensure_topics(BROKER, [names.labels], partitions=2))
    worker = make_worker({"FRAUD_AGENTS": "scoring"}, start=False).launch()
    deadline = time.monotonic() + 90
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not worker.alive(), "the worker should have stopped"
    assert f"{names.transactions} has 1 partitions but {names.labels} has 2" in worker.log_text()
