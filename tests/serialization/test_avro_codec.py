"""The Confluent-wire-format codec, without a broker: an in-memory registry stands in for the HTTP one."""
from __future__ import annotations

import json
import math
import struct

import pytest
from schema_registry.client import schema as sr_schema
from schema_registry.client.errors import ClientError

from app.records import Score, Transaction
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, DecodeError
from app.serialization.avro import validate_transaction


class MemoryRegistry:
    """Just the two calls the codec makes, with the registry's semantics (same schema -> same id)."""

    def __init__(self) -> None:
        self.by_id: dict[int, sr_schema.AvroSchema] = {}
        self.subjects: dict[str, list[int]] = {}
        self.lookups = 0
        self.calls: list[tuple[str, str]] = []

    def register(self, subject: str, avro_schema: sr_schema.AvroSchema) -> int:
        self.calls.append(("register", subject))
        for sid, known in self.by_id.items():
            if json.dumps(known.schema, sort_keys=True) == json.dumps(avro_schema.schema, sort_keys=True):
                self.subjects.setdefault(subject, []).append(sid)
                return sid
        sid = len(self.by_id) + 1
        self.by_id[sid] = avro_schema
        self.subjects.setdefault(subject, []).append(sid)
        return sid

    def update_compatibility(self, level: str, subject: str) -> bool:
        self.calls.append(("update_compatibility", subject))
        self.compatibility = {**getattr(self, "compatibility", {}), subject: level}
        return True

    def get_by_id(self, schema_id: int):
        self.lookups += 1
        if schema_id not in self.by_id:
            raise ClientError("Schema not found", http_code=404)
        return self.by_id[schema_id]


def tx_value(**over) -> dict:
    row = {"Time": 10.0, "Amount": 12.5, "Class": 0, **{f"V{i}": i / 10 for i in range(1, 29)}}
    value = to_transaction(row, "tx-1", 1_700_000_000.0, with_label=True)
    value.update(over)
    return value


@pytest.fixture
def registry():
    return MemoryRegistry()


@pytest.fixture
def codec(registry):
    return ConfluentAvroCodec(registry, "transactions", Transaction.avro_schema_to_python(), validate=validate_transaction)


def test_round_trip_has_the_wire_header(codec, registry):
    data = codec.dumps(tx_value())
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0 and schema_id == codec.schema_id
    assert registry.subjects["transactions-value"] == [schema_id]
    back = codec.loads(data)
    assert back == tx_value()


def test_the_subject_gets_full_transitive_before_the_schema_is_registered(codec, registry):
    codec.schema_id
    assert registry.compatibility == {"transactions-value": "FULL_TRANSITIVE"}
    assert registry.calls == [("update_compatibility", "transactions-value"), ("register", "transactions-value")]


def test_no_compatibility_leaves_the_subject_rule_alone(registry):
    ConfluentAvroCodec(registry, "scores", Score.avro_schema_to_python(), compatibility=None).schema_id
    assert registry.calls == [("register", "scores-value")]


def test_registration_is_idempotent(registry):
    a = ConfluentAvroCodec(registry, "transactions", Transaction.avro_schema_to_python())
    b = ConfluentAvroCodec(registry, "transactions", Transaction.avro_schema_to_python())
    assert a.schema_id == b.schema_id
    assert len(registry.by_id) == 1


def test_writer_schema_is_fetched_once_then_cached(codec, registry):
    data = codec.dumps(tx_value())
    for _ in range(5):
        codec.loads(data)
    assert registry.lookups == 1


def test_records_encode_through_their_representation(registry):
    codec = ConfluentAvroCodec(registry, "scores", Score.avro_schema_to_python())
    score = Score(transaction_id="tx-1", event_time=1.0, fraud_probability=0.25, decision=False, threshold=0.5,
                  model_version="m-1", events_learned=3, processing_time=2.0)
    back = codec.loads(codec.dumps(score))
    assert back["fraud_probability"] == 0.25 and back["model_version"] == "m-1" and back["anomaly_score"] is None


def test_reads_a_newer_writer_schema_with_an_added_optional_field(codec, registry):
    newer = Transaction.avro_schema_to_python()
    newer["fields"].append({"name": "channel", "type": ["null", "string"], "default": None})
    producer = ConfluentAvroCodec(registry, "transactions", newer)
    data = producer.dumps({**tx_value(), "channel": "web"})
    assert struct.unpack(">bI", data[:5])[1] != codec.schema_id
    assert codec.loads(data) == tx_value()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: b"", "empty"),
        (lambda d: b"\x00\x00", "too-short"),
        (lambda d: b"{" + d[1:], "bad-magic-byte"),
        (lambda d: d[:5].replace(d[1:5], struct.pack(">I", 999)) + d[5:], "unknown-schema-id"),
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: d + b"\x00\x01", "schema-mismatch"),
    ],
)
def test_bad_input_raises_with_its_reason(codec, mutate, reason):
    data = mutate(codec.dumps(tx_value()))
    with pytest.raises(DecodeError) as info:
        codec.loads(data)
    assert info.value.reason == reason
    assert str(info.value).startswith(reason + ":")


def test_a_body_written_with_another_schema_does_not_fit(codec, registry):
    other = ConfluentAvroCodec(registry, "other", {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]})
    with pytest.raises(DecodeError) as info:
        codec.loads(other.dumps({"x": 5}))
    assert info.value.reason == "schema-mismatch"


@pytest.mark.parametrize("bad", [{"Amount": math.nan}, {"V3": math.inf}, {"transaction_id": ""}])
def test_invalid_values_are_refused(codec, bad):
    with pytest.raises(DecodeError) as info:
        codec.loads(codec.dumps(tx_value(**bad)))
    assert info.value.reason == "invalid-value"


def test_registry_down_is_its_own_reason(registry):
    class Down(MemoryRegistry):
        def get_by_id(self, schema_id):
            raise ConnectionError("connection refused")

    writer = ConfluentAvroCodec(registry, "transactions", Transaction.avro_schema_to_python())
    data = writer.dumps(tx_value())
    reader = ConfluentAvroCodec(Down(), "transactions", Transaction.avro_schema_to_python())
    with pytest.raises(DecodeError) as info:
        reader.loads(data)
    assert info.value.reason == "registry-unavailable"


def test_reason_survives_wrapping():
    inner = DecodeError("truncated", "x")
    try:
        try:
            raise inner
        except DecodeError as exc:
            raise ValueError(str(exc)) from exc
    except ValueError as outer:
        assert DecodeError.reason_of(outer) == "truncated"
