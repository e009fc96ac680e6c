"""Bad input never stops the worker: each kind lands on dead-letters with the reason and the bytes."""
from __future__ import annotations

import struct

import pytest

from app.data.synthetic import generate
from app.records import DeadLetter, Score, Transaction
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.testing.kafka import produce_raw, read
from app.testing.replay import replay
from app.testing.stack import REGISTRY


def _good(names, tid: str) -> bytes:
    codec = ConfluentAvroCodec(make_registry_client(REGISTRY), names.transactions, Transaction.avro_schema_to_python())
    return codec.dumps(to_transaction(generate(1, seed=9)[0], tid, 0.0, with_label=True))


def _other_schema_id(names) -> int:
    """The id of a registered schema that is not a Transaction (an unrelated record)."""
    other = {"type": "record", "name": "Other", "namespace": "fraud.tests",
             "fields": [{"name": "x", "type": "long"}]}
    codec = ConfluentAvroCodec(make_registry_client(REGISTRY), names.prefix + ".other", other)
    return codec.schema_id


def _bad_messages(names, kind: str) -> bytes:
    good = _good(names, "good-0")
    if kind == "bad-magic-byte":
        return b"\x07" + good[1:]
    if kind == "unknown-schema-id":
        return b"\x00" + struct.pack(">I", 987_654_321) + good[5:]
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "schema-mismatch":  # a body written with another schema, under that schema's id
        return b"\x00" + struct.pack(">I", _other_schema_id(names)) + b"\x02"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["bad-magic-byte", "unknown-schema-id", "truncated", "schema-mismatch"])
def test_bad_message_goes_to_dead_letters_and_the_next_is_scored(make_worker, names, kind):
    worker = make_worker()
    replay(names, generate(5, seed=1), id_prefix="before")
    bad = _bad_messages(names, kind)
    produce_raw(names.transactions, [(b"bad-key", bad), (b"good-1", _good(names, "good-1"))])

    letters = read(names.dead_letters, DeadLetter, expect=1, timeout_s=60)
    assert len(letters) == 1, worker.log_tail()
    key, letter, _, _ = letters[0]
    assert letter["reason"] == kind, letter["error"]
    assert letter["error"]
    assert letter["topic"] == names.transactions
    assert letter["partition"] == 0
    assert letter["offset"] == 5  # after the five good ones
    assert letter["value"] == bad and letter["key"] == b"bad-key" and key == b"bad-key"

    scores = read(names.scores, Score, expect=6, timeout_s=60)
    assert "good-1" in {v["transaction_id"] for _, v, _, _ in scores}
    assert len(scores) == 6
    assert worker.alive()
    assert worker.metric("fraud_dead_letters_total", topic=names.transactions, reason=kind) == 1
