"""Schema evolution: a backward-compatible producer change keeps being scored; an incompatible one is refused."""
from __future__ import annotations

import pytest

from app.data.synthetic import generate
from app.records import Score, Transaction
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, SchemaRefused, make_registry_client
from app.testing.kafka import produce_raw, read
from app.testing.replay import replay
from app.testing.stack import REGISTRY


def test_added_optional_field_mid_stream_keeps_scoring(make_worker, names):
    worker = make_worker()
    replay(names, generate(50, seed=1), id_prefix="v1")
    newer = Transaction.avro_schema_to_python()
    newer["fields"].append({"name": "channel", "type": ["null", "string"], "default": None})
    v2 = ConfluentAvroCodec(make_registry_client(REGISTRY), names.transactions, newer)
    rows = generate(50, seed=2)
    produce_raw(names.transactions, [
        (f"v2-{i}".encode(), v2.dumps({**to_transaction(row, f"v2-{i}", 0.0, True), "channel": "web"}))
        for i, row in enumerate(rows)
    ])
    scores = read(names.scores, Score, expect=100, timeout_s=90)
    ids = {v["transaction_id"] for _, v, _, _ in scores}
    assert len(scores) == 100, worker.log_tail()
    assert {f"v2-{i}" for i in range(50)} <= ids
    assert worker.metric("fraud_dead_letters_total") == 0


def test_incompatible_schema_is_refused_with_the_registry_reason(stack, names):
    client = make_registry_client(REGISTRY)
    ConfluentAvroCodec(client, names.transactions, Transaction.avro_schema_to_python()).schema_id
    broken = Transaction.avro_schema_to_python()
    for field in broken["fields"]:
        if field["name"] == "Amount":
            field["type"] = "string"  # a reader expecting a double cannot read it
    with pytest.raises(SchemaRefused) as info:
        ConfluentAvroCodec(client, names.transactions, broken).schema_id
    assert info.value.http_code == 409
    assert "ncompatible" in info.value.reason
    assert names.transactions in str(info.value)
