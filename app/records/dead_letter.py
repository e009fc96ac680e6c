"""An input message that could not be used, kept whole with the reason."""

import typing

from app.records.base import NAMESPACE, Record


class DeadLetter(Record):
    """The original bytes of a rejected message and where it came from.

    ``reason`` is a short machine-readable kind (``bad-magic-byte``, ``unknown-schema-id``,
    ``truncated``, ``schema-mismatch``, ``invalid-value``, ...); ``error`` is the human-readable detail.
    """

    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    processing_time: float
    timestamp: typing.Optional[float] = None
    key: typing.Optional[bytes] = None
    value: typing.Optional[bytes] = None

    class Meta:
        namespace = NAMESPACE
