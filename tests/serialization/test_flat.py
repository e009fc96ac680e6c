"""The quick reader of flat records (app.serialization.flat) reads what fastavro reads, and the codec
reports a body it cannot read as fastavro does."""
from __future__ import annotations

import io
import struct

import fastavro
import pytest
from hypothesis import given, settings, strategies as st

from app.records import Transaction
from app.serialization import ConfluentAvroCodec, DecodeError
from app.serialization.avro import validate_transaction
from app.serialization.flat import flat_reader, flat_writer
from tests.serialization.test_avro_codec import MemoryRegistry, tx_value

SCHEMA = fastavro.parse_schema(Transaction.avro_schema_to_python())
READ = flat_reader(SCHEMA)
GOOD = io.BytesIO()
fastavro.schemaless_writer(GOOD, SCHEMA, tx_value())
GOOD = GOOD.getvalue()


def _fastavro(body: bytes):
    """fastavro's record and the bytes it used, or the type of its error."""
    stream = io.BytesIO(body)
    try:
        return fastavro.schemaless_reader(stream, SCHEMA, None), stream.tell()
    except Exception as exc:  # noqa: BLE001 - compared with the quick reader's outcome
        return type(exc)


def _quick(body: bytes):
    try:
        return READ(body, 0)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


optional_text = st.none() | st.text(max_size=40)
optional_long = st.none() | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=60), st.lists(st.floats(allow_nan=False), min_size=30, max_size=30),
       optional_long, optional_text, optional_text, optional_text, optional_long)
def test_a_written_transaction_reads_back_the_same_as_with_fastavro(tx_id, numbers, label, card, merchant,
                                                                   terminal, scenario):
    value = {"transaction_id": tx_id, "event_time": numbers[0], "Amount": numbers[1],
             **{f"V{i}": numbers[i + 1] for i in range(1, 29)}, "Class": label, "card_id": card,
             "merchant_id": merchant, "terminal_id": terminal, "fraud_scenario": scenario}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, value)
    body = out.getvalue()
    assert READ(body, 0) == _fastavro(body) == (value, len(body))


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(min_value=0, max_value=255))
def test_a_corrupted_body_is_read_as_fastavro_reads_it_or_refused(position, byte):
    body = bytearray(GOOD)
    body[position] = byte
    quick = _quick(bytes(body))
    if not isinstance(quick, type):  # read: then exactly as fastavro reads it (a NaN too: compared by repr)
        assert repr(quick) == repr(_fastavro(bytes(body)))


@pytest.mark.parametrize("cut", range(0, len(GOOD), 7))
def test_a_truncated_body_is_refused(cut):
    assert isinstance(_quick(GOOD[:cut]), type)


def test_the_codec_reports_bad_bodies_as_fastavro_does():
    codec = ConfluentAvroCodec(MemoryRegistry(), "transactions", Transaction.avro_schema_to_python(),
                               validate=validate_transaction)
    header = struct.pack(">bI", 0, codec.schema_id)
    assert codec.loads(header + GOOD) == _fastavro(GOOD)[0]
    class_index = 1 + len(tx_value()["transaction_id"].encode()) + 30 * 8  # the union index of Class
    reasons = {}
    for name, body in {"truncated": GOOD[:40], "left over": GOOD + b"\x00",
                       "bad union index": GOOD[:class_index] + b"\x06" + GOOD[class_index + 1:]}.items():
        with pytest.raises(DecodeError) as refused:
            codec.loads(header + body)
        reasons[name] = refused.value.reason
    assert reasons == {"truncated": "truncated", "left over": "schema-mismatch", "bad union index": "schema-mismatch"}


def test_a_record_with_nested_types_has_no_quick_reader():
    from app.records import Score

    assert flat_reader(fastavro.parse_schema(Score.avro_schema_to_python())) is None


SCORE = None


def _score_schema():
    global SCORE
    if SCORE is None:
        from app.records import Score

        SCORE = fastavro.parse_schema(Score.avro_schema_to_python())
    return SCORE


def _fastavro_bytes(schema, value) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, value)
    return out.getvalue()


finite = st.floats(allow_nan=False, allow_infinity=False)
longs = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), finite, finite, st.booleans(), st.text(max_size=20), longs, st.none() | finite,
       st.none() | longs, longs | st.integers(min_value=-5, max_value=5), st.integers(min_value=-1, max_value=10**9))
def test_a_score_is_written_as_fastavro_writes_it(tx_id, when, probability, decision, version, learned,
                                                  anomaly, label, partition, offset):
    schema = _score_schema()
    score = {"transaction_id": tx_id, "event_time": when, "fraud_probability": probability, "decision": decision,
             "threshold": 0.5, "model_version": version, "events_learned": learned, "processing_time": when,
             "anomaly_score": anomaly, "label": label, "partition": partition, "offset": offset,
             "members": None, "top_features": None}
    assert flat_writer(schema)(score) == _fastavro_bytes(schema, score)


def test_a_score_with_explanations_is_left_to_fastavro():
    from app.serialization.flat import flat_writer as writer

    score = {"transaction_id": "t", "event_time": 1.0, "fraud_probability": 0.2, "decision": False,
             "threshold": 0.5, "model_version": "arf-g0", "events_learned": 3, "processing_time": 2.0,
             "anomaly_score": None, "label": None, "partition": 0, "offset": 7,
             "members": {"arf": 0.1}, "top_features": None}
    write = writer(_score_schema())
    assert write(score) is None
    assert write({**score, "members": None, "events_learned": 3.0}) is None      # not a long
    assert write({k: v for k, v in score.items() if k != "label"}) is None       # a field missing


def test_the_codec_writes_what_fastavro_writes():
    from app.records import Score

    codec = ConfluentAvroCodec(MemoryRegistry(), "scores", Score.avro_schema_to_python())
    header = struct.pack(">bI", 0, codec.schema_id)
    plain = {"transaction_id": "t", "event_time": 1.0, "fraud_probability": 0.2, "decision": True,
             "threshold": 0.5, "model_version": "arf-g0", "events_learned": 3, "processing_time": 2.0,
             "anomaly_score": None, "label": 1, "partition": 0, "offset": 7, "members": None, "top_features": None}
    explained = {**plain, "members": {"arf": 0.1, "lr": 0.3},
                 "top_features": [{"name": "V14", "contribution": -1.5}]}
    for score in (plain, explained):
        assert codec.dumps(score) == header + _fastavro_bytes(_score_schema(), score)
