"""Labels that came before their transaction: their stored form and a bounded, expiring index.

A label whose transaction has not been scored yet is parked: kept in a changelog-backed table under
its transaction id until that transaction is scored (then it is learned with the features just
computed) or it expires. It is stored as ``PRK1`` and JSON (the label, its transaction's event time,
the source partition, the label's offset there): data read back from the table's changelog, so decoding it never runs code.
Anything else is refused with :class:`ParkedFormatError`.

>>> blob = encode_parked(1, event_time=100.0, partition=2, offset=41)
>>> blob
b'PRK1[1,100.0,2,41]'
>>> decode_parked(blob)
ParkedLabel(label=1, event_time=100.0, partition=2, offset=41)
>>> decode_parked(b'PRK1[7,100.0,2,41]')  # only 0 or 1 is a label
Traceback (most recent call last):
...
app.state.parked.ParkedFormatError: a parked label of the wrong shape
"""
from __future__ import annotations

import collections
import heapq
import itertools
import json
import math
from typing import NamedTuple

_MAGIC = b"PRK1"  # then the JSON of [label, event_time, partition, offset]


class ParkedFormatError(ValueError):
    """The bytes are not a parked label in the current format."""


class ParkedLabel(NamedTuple):
    label: int
    event_time: float  # of the transaction it labels
    partition: int
    offset: int  # of the label on its topic


def encode_parked(label: int, event_time: float, partition: int, offset: int) -> bytes:
    """The table value of a parked label."""
    return _MAGIC + json.dumps([int(label), float(event_time), int(partition), int(offset)],
                               separators=(",", ":")).encode()


def decode_parked(blob: bytes) -> ParkedLabel:
    """The parked label of a table value written by :func:`encode_parked`;
    :class:`ParkedFormatError` for anything else."""
    if not isinstance(blob, bytes) or not blob.startswith(_MAGIC):
        raise ParkedFormatError("not a parked label (bad header)")
    try:
        label, event_time, partition, offset = json.loads(blob[len(_MAGIC):])
    except (ValueError, TypeError) as exc:
        raise ParkedFormatError(f"unreadable parked label: {exc}") from exc
    if not (label in (0, 1) and type(label) is int and isinstance(event_time, (int, float))
            and math.isfinite(event_time) and type(partition) is int and type(offset) is int):
        raise ParkedFormatError("a parked label of the wrong shape")
    return ParkedLabel(label, float(event_time), partition, offset)


class ParkedIndex:
    """The parked transaction ids of one partition, bounded in count and expiring in event time.

    When more than ``max_size`` are parked, the earliest parked go first; :meth:`expire` also
    removes those whose transaction's event time is more than ``ttl_s`` behind the partition's
    latest transaction event time (``watermark``): a transaction that late would have expired from
    the pending table too. Parking an id again replaces its event time.

    >>> index = ParkedIndex(max_size=2, ttl_s=10.0)
    >>> index.add(b"a", 50.0); index.add(b"b", 5.0); index.add(b"c", 60.0)
    >>> index.expire(watermark=0.0)            # over the size bound: the earliest parked goes
    [b'a']
    >>> index.expire(watermark=20.0)           # b's transaction (5.0) is more than 10 s behind 20.0
    [b'b']
    >>> b"c" in index, index.pop(b"c"), index.pop(b"c"), len(index)
    (True, True, False, 0)
    """

    def __init__(self, max_size: int, ttl_s: float) -> None:
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._ids: collections.OrderedDict[bytes, tuple[float, int]] = collections.OrderedDict()
        self._by_time: list[tuple[float, int, bytes]] = []  # a heap; entries of removed ids are skipped
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: bytes) -> bool:
        return key in self._ids

    def add(self, key: bytes, event_time: float) -> None:
        seq = next(self._seq)
        self._ids.pop(key, None)
        self._ids[key] = (event_time, seq)
        heapq.heappush(self._by_time, (event_time, seq, key))

    def pop(self, key: bytes) -> bool:
        """Forget ``key`` (its transaction came); whether it was parked."""
        return self._ids.pop(key, None) is not None

    def expire(self, watermark: float) -> list[bytes]:
        """Remove and return the ids over the size bound, then those whose event time is more
        than ``ttl_s`` behind ``watermark``."""
        out = []
        while len(self._ids) > self.max_size:
            out.append(self._ids.popitem(last=False)[0])
        horizon = watermark - self.ttl_s
        heap = self._by_time
        while heap and heap[0][0] < horizon:
            event_time, seq, key = heapq.heappop(heap)
            if self._ids.get(key) == (event_time, seq):
                del self._ids[key]
                out.append(key)
        if len(heap) > 2 * len(self._ids) + 1024:  # entries of ids popped or parked again pile up: rebuild
            self._by_time = [(t, s, k) for k, (t, s) in self._ids.items()]
            heapq.heapify(self._by_time)
        return out
