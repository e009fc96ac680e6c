"""Pending features: exact round trip; the index bounds, expires and remembers."""
from __future__ import annotations

from app.state.pending import PendingIndex, decode_pending, encode_pending


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
