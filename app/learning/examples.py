"""A labelled example: what a scorer hands the central learner, and its bytes on the examples topic.

In central learning (``LEARNING_MODE = "central"``, see ``docs/scaleout.md``) scorers only predict;
when a scorer holds both the features it used for a transaction (window features included, which
cannot be recomputed later) and the transaction's label, it writes an :class:`Example` to the
examples topic, keyed by the transaction id (:attr:`Example.key`). The one learner reads them in
order and predicts then learns each.

``source`` is the position (topic, partition, offset) of the message whose processing produced
the example: the transaction (a label in the event, or a parked label met by its transaction) or
the late label. The learner skips an example at or below the highest source offset it has learned
for that topic and partition (:mod:`app.learning.central`), so the duplicates a scorer writes when
it re-scores redelivered messages are learned once.

The encoding is a header and compact JSON, not a pickle (the learner decodes what any producer of
the topic wrote): floats round-trip exactly, NaN and infinities included, and integer features stay
integers. :func:`decode` checks the shape and raises :class:`ExampleFormatError` with the reason.

>>> example = Example("tx-1", 1.7e9, {"Amount": 12.5, "V1": -0.1}, 1, ("transactions", 3, 42))
>>> blob = encode(example)
>>> blob[:4], example.key
(b'FEX1', b'tx-1')
>>> decode(blob) == example
True
>>> decode(b'FEX1["tx-1", 0.0, {}, 2, ["transactions", 0, 0]]')
Traceback (most recent call last):
...
app.learning.examples.ExampleFormatError: wrong_shape: the label must be 0 or 1, got 2
>>> decode(b"something else")
Traceback (most recent call last):
...
app.learning.examples.ExampleFormatError: bad_header: not an example (no FEX1 header)
"""
from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["Example", "ExampleFormatError", "decode", "encode", "MAGIC"]

MAGIC = b"FEX1"


class ExampleFormatError(ValueError):
    """Bytes that are not an encoded :class:`Example`; ``reason`` is ``bad_header``,
    ``unreadable`` (not JSON) or ``wrong_shape`` (JSON, but not an example's fields)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Example:
    """One labelled transaction as its scorer saw it.

    ``features`` is the model input the scorer predicted with (feature name to number);
    ``label`` is 1 (fraud) or 0; ``source`` is ``(topic, partition, offset)`` of the message whose
    processing produced the example."""

    transaction_id: str
    event_time: float
    features: dict
    label: int
    source: tuple

    @property
    def key(self) -> bytes:
        """The message key on the examples topic: the transaction id's UTF-8 bytes."""
        return self.transaction_id.encode()

    @property
    def source_partition(self) -> str:
        """``"<topic>:<partition>"`` of the source, the key of a learner's learned positions.

        >>> Example("tx-1", 0.0, {}, 0, ("labels", 2, 7)).source_partition
        'labels:2'
        """
        return f"{self.source[0]}:{self.source[1]}"


def encode(example: Example) -> bytes:
    """The bytes of ``example``: :data:`MAGIC` then the JSON list of its fields."""
    topic, partition, offset = example.source
    fields = [example.transaction_id, example.event_time, example.features, example.label,
              [topic, partition, offset]]
    return MAGIC + json.dumps(fields, separators=(",", ":")).encode()


def decode(blob: bytes) -> Example:
    """The :class:`Example` encoded in ``blob``; :class:`ExampleFormatError` for anything else."""
    if not isinstance(blob, (bytes, bytearray)) or not blob.startswith(MAGIC):
        raise ExampleFormatError("bad_header", f"not an example (no {MAGIC.decode()} header)")
    try:
        fields = json.loads(blob[len(MAGIC):])
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise ExampleFormatError("unreadable", f"not JSON: {exc}") from exc
    if not (isinstance(fields, list) and len(fields) == 5):
        raise ExampleFormatError("wrong_shape", "expected a list of 5 fields")
    transaction_id, event_time, features, label, source = fields
    if not isinstance(transaction_id, str):
        raise ExampleFormatError("wrong_shape", "the transaction id must be a string")
    if not _is_number(event_time):
        raise ExampleFormatError("wrong_shape", "the event time must be a number")
    if not (isinstance(features, dict) and all(_is_number(value) for value in features.values())):
        raise ExampleFormatError("wrong_shape", "the features must map names to numbers")
    if label not in (0, 1) or isinstance(label, bool) or not isinstance(label, int):
        raise ExampleFormatError("wrong_shape", f"the label must be 0 or 1, got {label!r}")
    if not (isinstance(source, list) and len(source) == 3 and isinstance(source[0], str)
            and _is_int(source[1]) and _is_int(source[2])):
        raise ExampleFormatError("wrong_shape", "the source must be [topic, partition, offset]")
    return Example(transaction_id, event_time, features, label, tuple(source))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
