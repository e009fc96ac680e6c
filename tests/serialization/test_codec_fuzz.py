"""Property-based: whatever the bytes, the codec returns a valid value or raises DecodeError, never anything else."""
from __future__ import annotations

import math
import struct

from hypothesis import given, settings, strategies as st

from app.records import Transaction
from app.serialization import ConfluentAvroCodec, DecodeError
from app.serialization.avro import MAX_ABS_FEATURE, validate_transaction
from tests.serialization.test_avro_codec import MemoryRegistry, tx_value

REGISTRY = MemoryRegistry()
CODEC = ConfluentAvroCodec(REGISTRY, "transactions", Transaction.avro_schema_to_python(), validate=validate_transaction)
GOOD = CODEC.dumps(tx_value())


def _decode_or_reason(data: bytes):
    try:
        value = CODEC.loads(data)
    except DecodeError as exc:
        return exc.reason
    assert value["transaction_id"]
    assert all(math.isfinite(v) for v in value.values() if isinstance(v, float))
    return value


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data):
    _decode_or_reason(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bodies_behind_a_valid_header(body):
    _decode_or_reason(struct.pack(">bI", 0, CODEC.schema_id) + body)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(min_value=0, max_value=255))
def test_single_byte_corruptions(position, byte):
    data = bytearray(GOOD)
    data[position] = byte
    _decode_or_reason(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD) - 1))
def test_every_truncation_is_refused(cut):
    assert isinstance(_decode_or_reason(GOOD[:cut]), str)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e12, max_value=1e12),
    st.text(min_size=0, max_size=300),
)
def test_numbers_and_ids(amount, event_time, tid):
    result = _decode_or_reason(CODEC.dumps(tx_value(Amount=amount, event_time=event_time, transaction_id=tid)))
    ok = math.isfinite(amount) and abs(amount) <= MAX_ABS_FEATURE and 0 < len(tid) <= 256
    assert (isinstance(result, dict)) == ok, result
    if ok:
        assert result["Amount"] == amount and result["event_time"] == event_time
