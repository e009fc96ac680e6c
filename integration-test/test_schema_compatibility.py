"""Compatibility rules on the real registry (Apicurio, through its Confluent-compatible API).

The codec gives every subject ``FULL_TRANSITIVE`` (see :mod:`app.serialization.avro`): a producer
schema that drops a field the worker needs is refused at registration, with the registry's
reason, so no message of it reaches the topic. The level-by-level test pins what Apicurio does
for each candidate level, which is what that choice rests on.
"""
from __future__ import annotations

import struct
import uuid

import httpx
import pytest

from app.data.synthetic import generate
from app.records import Label, Score, Transaction
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, SchemaRefused, make_registry_client, register_schema, subject_for
from app.testing.kafka import read
from app.testing.replay import replay
from app.testing.stack import REGISTRY

BASE = {"type": "record", "name": "Tx", "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"}]}
CHANGES = {
    "drop a required field": [{"name": "id", "type": "string"}],
    "add a required field": BASE["fields"] + [{"name": "channel", "type": "string"}],
    "add an optional field": BASE["fields"] + [{"name": "channel", "type": ["null", "string"], "default": None}],
}
# What Apicurio 3.0 accepts (True) after BASE, per level. BACKWARD lets a producer drop a field its
# readers need; FORWARD_TRANSITIVE lets a field be added that no older record has; FULL_TRANSITIVE
# accepts only a change both ways: adding or removing a field with a default.
ACCEPTED = {
    "BACKWARD": {"drop a required field": True, "add a required field": False, "add an optional field": True},
    "FORWARD_TRANSITIVE": {"drop a required field": False, "add a required field": True, "add an optional field": True},
    "FULL_TRANSITIVE": {"drop a required field": False, "add a required field": False, "add an optional field": True},
}


def without(record: type, field: str) -> dict:
    schema = record.avro_schema_to_python()
    schema["fields"] = [f for f in schema["fields"] if f["name"] != field]
    return schema


@pytest.mark.parametrize("level", sorted(ACCEPTED))
def test_what_each_level_accepts_on_apicurio(stack, level):
    client = make_registry_client(REGISTRY)
    for change, fields in CHANGES.items():
        topic = f"compat-{level.lower()}-{uuid.uuid4().hex[:8]}"
        first = register_schema(client, topic, BASE, compatibility=level)
        assert httpx.get(f"{REGISTRY}/config/{subject_for(topic)}", timeout=10).json() == {"compatibilityLevel": level}
        try:
            register_schema(client, topic, {**BASE, "fields": fields}, compatibility=level)
            accepted = True
        except SchemaRefused as refused:
            assert refused.http_code == 409 and "Incompatible" in refused.reason, refused
            accepted = False
        assert accepted == ACCEPTED[level][change], f"{level}, {change}"
        assert register_schema(client, topic, BASE, compatibility=level) == first  # a known schema: its id, unchecked


def test_a_producer_schema_without_a_required_field_is_refused_and_never_reaches_the_worker(make_worker, names):
    worker = make_worker()
    replay(names, generate(100, seed=71), id_prefix="v1")
    client = make_registry_client(REGISTRY)
    config = httpx.get(f"{REGISTRY}/config/{subject_for(names.transactions)}", timeout=10).json()
    assert config == {"compatibilityLevel": "FULL_TRANSITIVE"}

    no_amount = ConfluentAvroCodec(client, names.transactions, without(Transaction, "Amount"))
    value = to_transaction(generate(1, seed=72)[0], "no-amount-0", 0.0, True)
    value.pop("Amount")
    with pytest.raises(SchemaRefused) as refused:
        no_amount.dumps(value)
    assert refused.value.http_code == 409
    assert "Incompatible" in refused.value.reason and "Amount" in refused.value.reason, refused.value.reason
    with pytest.raises(SchemaRefused) as refused_label:
        ConfluentAvroCodec(client, names.labels, without(Label, "label")).schema_id
    assert refused_label.value.http_code == 409 and "label at " in refused_label.value.reason, refused_label.value.reason

    replay(names, generate(100, seed=73), id_prefix="v1-after")
    scores = read(names.scores, Score, expect=200, timeout_s=90)
    assert len(scores) == 200, worker.log_tail()
    assert worker.metric("fraud_dead_letters_total") == 0
    tx_id = ConfluentAvroCodec(client, names.transactions, Transaction.avro_schema_to_python()).schema_id
    written = read(names.transactions, None, expect=200, timeout_s=30, idle_s=2.0)
    assert len(written) == 200
    assert {struct.unpack(">bI", value[:5])[1] for _, value, _, _ in written} == {tx_id}
