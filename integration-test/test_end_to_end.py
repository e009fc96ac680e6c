"""N transactions in, N scores out, each joinable to its transaction, schemas from the registry."""
from __future__ import annotations

import httpx

from app.data.synthetic import generate
from app.records import Score, Transaction
from app.testing.kafka import read
from app.testing.replay import replay
from app.testing.stack import REGISTRY


def test_every_transaction_gets_one_score(make_worker, names):
    worker = make_worker()
    rows = generate(500, seed=3)
    sent = replay(names, rows, keep_ids=True)
    assert sent.transactions == 500

    scores = read(names.scores, Score, expect=500, timeout_s=90)
    by_id = {value["transaction_id"]: (key, value) for key, value, _, _ in scores}
    assert len(scores) == 500, worker.log_tail()
    assert set(by_id) == set(sent.ids)
    # joinable by key and by id, with the transaction's event time and a model version
    transactions = {v["transaction_id"]: v for _, v, _, _ in read(names.transactions, Transaction, expect=500)}
    for tid, (key, score) in by_id.items():
        assert key == tid.encode()
        assert score["event_time"] == transactions[tid]["event_time"]
        assert score["model_version"]
        assert 0.0 <= score["fraud_probability"] <= 1.0
        assert score["processing_time"] >= score["event_time"] - 1e6  # a real clock reading
    assert worker.metric("fraud_events_in_total", topic=names.transactions) == 500
    assert worker.metric("fraud_events_out_total", topic=names.scores) == 500


def test_schemas_are_registered_under_topic_subjects(make_worker, names):
    make_worker()
    replay(names, generate(20, seed=4))
    read(names.scores, Score, expect=20, timeout_s=60)
    # asked subject by subject: the registry's subject list is paged, and it keeps every test's subjects
    for subject in (f"{names.transactions}-value", f"{names.scores}-value"):
        versions = httpx.get(f"{REGISTRY}/subjects/{subject}/versions")
        assert versions.status_code == 200 and versions.json(), (subject, versions.text)
    # the registry holds the very schema of the record, under the subject
    latest = httpx.get(f"{REGISTRY}/subjects/{names.scores}-value/versions/latest").json()
    assert '"name": "Score"' in latest["schema"] or '"name":"Score"' in latest["schema"]
