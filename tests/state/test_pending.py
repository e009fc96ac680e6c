"""Pending features: exact round trip; the index bounds, expires and remembers."""
from __future__ import annotations

import pickle

import pytest

from app.state.pending import PendingFormatError, PendingIndex, decode_pending, encode_pending


def test_features_round_trip_exactly():
    x = {"V1": 0.1 + 0.2, "Amount": 1e-300, "V2": -3.14159265358979}
    entry = decode_pending(encode_pending(x, 0.123456789012345678, 1.7e9 + 0.001, 3))
    assert entry.x == x and list(entry.x) == list(x)
    assert (entry.probability, entry.event_time, entry.partition) == (0.123456789012345678, 1.7e9 + 0.001, 3)


def test_size_bound_expires_the_oldest_first():
    index = PendingIndex(max_size=3, ttl_s=1e9)
    for i in range(5):
        index.add(f"t{i}".encode(), float(i))
    assert index.expire() == [b"t0", b"t1"]
    assert len(index) == 3 and b"t4" in index and index.was_expired(b"t1") and not index.was_expired(b"t2")


def test_ttl_is_in_event_time():
    index = PendingIndex(max_size=100, ttl_s=60.0)
    index.add(b"a", 1000.0)
    index.add(b"b", 1030.0)
    index.see(1061.0)  # a transaction with a label in the event, 61 s after a
    assert index.expire() == [b"a"]
    assert index.expire() == []


def test_remembers_a_bounded_number_of_expired_ids():
    index = PendingIndex(max_size=1, ttl_s=1e9, remember=2)
    for i in range(5):
        index.add(f"t{i}".encode(), float(i))
        index.expire()
    assert [index.was_expired(f"t{i}".encode()) for i in range(4)] == [False, False, True, True]


def test_a_labelled_id_leaves_the_index():
    index = PendingIndex(max_size=10, ttl_s=10.0)
    index.add(b"a", 0.0)
    assert index.discard(b"a") and not index.discard(b"a") and len(index) == 0


def test_special_floats_and_ints_round_trip():
    x = {"V1": float("inf"), "V2": float("-inf"), "count": 3, "missing": None, "tiny": 5e-324}
    entry = decode_pending(encode_pending(x, 1.0, 0.0, 0))
    assert entry.x == x and type(entry.x["count"]) is int and type(entry.x["V1"]) is float
    nan = decode_pending(encode_pending({"V1": float("nan")}, float("nan"), 1.0, 0))
    assert nan.x["V1"] != nan.x["V1"] and nan.probability != nan.probability


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled')",))


@pytest.mark.parametrize("blob", [
    pickle.dumps(({"V1": 0.5}, 0.25, 100.0, 2)),  # written by an earlier version
    pickle.dumps(_Boom()),
    b"PND1" + pickle.dumps(_Boom()),
    b"PND1{not json",
    b'PND1[{"V1":"text"},0.5,1.0,0]',
    b'PND1[{"V1":0.5},0.5,1.0,"0"]',
    b'PND1[[1,2],0.5,1.0,0]',
    b'PND1[{"V1":0.5},0.5,1.0]',
])
def test_anything_else_is_refused_without_running_it(blob):
    with pytest.raises(PendingFormatError):
        decode_pending(blob)
