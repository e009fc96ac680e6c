"""Transactions waiting for their label: their stored form and a bounded, expiring index.

A pending entry keeps what learning needs when the label comes: the features the model saw, the
probability it gave (for the prequential metrics), the event time, the source partition and, when
the transaction has one, its terminal id (a learned label goes to its terminal's windows:
:mod:`app.scoring.windows`; entries written without it, by earlier versions, still decode). It is
stored as ``PND1`` and JSON (floats round-trip exactly, ints stay ints): data that is read back
from the table's changelog, so decoding it can never run code (as unpickling could). Anything else
(entries pickled by earlier versions among them) is refused with :class:`PendingFormatError`.

The entries are not signed: a forged one could only make the model learn chosen features with a
real label, as a forged transaction on the input topic could; it cannot make the worker run code.

>>> blob = encode_pending({"V1": 0.5, "Amount": 9.99}, probability=0.25, event_time=100.0, partition=2)
>>> blob
b'PND1[{"V1":0.5,"Amount":9.99},0.25,100.0,2]'
>>> decode_pending(blob)
PendingFeatures(x={'V1': 0.5, 'Amount': 9.99}, probability=0.25, event_time=100.0, partition=2, terminal_id=None)
>>> decode_pending(encode_pending({"Amount": 1.0}, 0.5, 100.0, 0, terminal_id="term-7")).terminal_id
'term-7'
>>> import pickle
>>> decode_pending(pickle.dumps(({"V1": 0.5}, 0.25, 100.0, 2)))  # a pickle: refused, not unpickled
Traceback (most recent call last):
...
app.state.pending.PendingFormatError: not pending features (bad header)
"""
from __future__ import annotations

import collections
import json
from typing import NamedTuple

_MAGIC = b"PND1"  # then the JSON of [x, probability, event_time, partition] or [..., partition, terminal_id]


class PendingFormatError(ValueError):
    """The bytes are not pending features in the current format."""


class PendingFeatures(NamedTuple):
    x: dict
    probability: float
    event_time: float
    partition: int
    terminal_id: str | None = None


def encode_pending(x: dict, probability: float, event_time: float, partition: int,
                   terminal_id: str | None = None) -> bytes:
    """The table value of a pending transaction (floats round-trip exactly, NaN and infinities
    included). ``x`` maps feature names to numbers (or None); ``terminal_id`` is stored when given."""
    fields = [x, probability, event_time, partition] + ([terminal_id] if terminal_id else [])
    return _MAGIC + json.dumps(fields, separators=(",", ":")).encode()


def decode_pending(blob: bytes) -> PendingFeatures:
    """The pending transaction of a table value written by :func:`encode_pending`;
    :class:`PendingFormatError` for anything else."""
    if not blob.startswith(_MAGIC):
        raise PendingFormatError("not pending features (bad header)")
    try:
        x, probability, event_time, partition, *rest = json.loads(blob[len(_MAGIC):])
    except (ValueError, TypeError) as exc:
        raise PendingFormatError(f"unreadable pending features: {exc}") from exc
    terminal_id = rest[0] if len(rest) == 1 else None
    if not (isinstance(x, dict) and all(value is None or _is_number(value) for value in x.values())
            and _is_number(probability) and _is_number(event_time) and type(partition) is int
            and len(rest) <= 1 and (terminal_id is None or isinstance(terminal_id, str))):
        raise PendingFormatError("pending features of the wrong shape")
    return PendingFeatures(x, probability, event_time, partition, terminal_id)


def _is_number(value) -> bool:
    return isinstance(value, (int, float))


class PendingIndex:
    """The pending transaction ids of one partition in arrival order, bounded and expiring.

    An id expires when more than ``max_size`` are pending (the oldest go first) or when the
    partition's event time has moved more than ``ttl_s`` past its own. The latest ``remember``
    expired ids are kept (ids only) so that a label arriving for one is counted as expired, not
    unknown.

    >>> index = PendingIndex(max_size=2, ttl_s=10.0)
    >>> index.add(b"a", 0.0); index.add(b"b", 5.0); index.add(b"c", 6.0)
    >>> index.expire()          # over the size bound: the oldest goes
    [b'a']
    >>> index.add(b"d", 17.0)   # event time 17: b (5.0) and c (6.0) are more than 10 s old
    >>> sorted(index.expire())
    [b'b', b'c']
    >>> index.was_expired(b"a"), index.discard(b"d"), len(index)
    (True, True, 0)
    """

    def __init__(self, max_size: int, ttl_s: float, remember: int = 100_000) -> None:
        self.max_size = max_size
        self.ttl_s = ttl_s
        self.remember = remember
        self.watermark = float("-inf")  # the latest event time seen
        self._ids: collections.OrderedDict[bytes, float] = collections.OrderedDict()
        self._expired: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: bytes) -> bool:
        return key in self._ids

    def add(self, key: bytes, event_time: float) -> None:
        self._ids[key] = event_time
        self._ids.move_to_end(key)
        self.see(event_time)

    def see(self, event_time: float) -> None:
        """Advance the partition's event time."""
        if event_time > self.watermark:
            self.watermark = event_time

    def discard(self, key: bytes) -> bool:
        """Forget ``key`` (its label came); whether it was pending."""
        return self._ids.pop(key, None) is not None

    def expire(self) -> list[bytes]:
        """Remove and return the ids that are over the size bound or older than the TTL."""
        out = []
        ids = self._ids
        horizon = self.watermark - self.ttl_s
        while ids:
            key, event_time = next(iter(ids.items()))
            if len(ids) > self.max_size or event_time < horizon:
                ids.popitem(last=False)
                out.append(key)
                self._remember_expired(key)
            else:
                break
        return out

    def was_expired(self, key: bytes) -> bool:
        return key in self._expired

    def _remember_expired(self, key: bytes) -> None:
        self._expired[key] = None
        while len(self._expired) > self.remember:
            self._expired.popitem(last=False)
