"""Writing a changelog-backed Faust table outside of an event: name the changelog partition.

``table[key] = value`` logs to the partition of the event being processed; these helpers take it
explicitly, so they work in batches that mix partitions and outside of any event (at shutdown and
on revocation). Keys chosen so that an entry lives in the changelog partition of its source
partition (``checkpoint_key``) are recovered by the worker that gets that partition, before it
consumes.
"""
from __future__ import annotations

import warnings


def checkpoint_key(partition: int) -> bytes:
    """The key of a source partition's checkpoint (a table keyed by it has one entry per partition).

    >>> checkpoint_key(3)
    b'3'
    """
    return str(partition).encode()


def put(table, partition: int, key: bytes, value: bytes):
    """``table[key] = value``, logged to the changelog partition ``partition``; the future of the
    broker's confirmation of the changelog record (what the table's ``send_changelog`` returns)."""
    table.data[key] = value
    return table.send_changelog(partition, key, value)


def delete(table, partition: int, key: bytes):
    """``del table[key]``, a tombstone in the changelog partition ``partition``; the future of its
    confirmation."""
    table.data.pop(key, None)
    return table.send_changelog(partition, key, None, value_serializer="raw")


def get(table, key: bytes) -> bytes | None:
    return table.data.get(key)


def checkpoint_table(app, name: str, max_bytes: int, help: str, partitions: int = 8):
    """A changelog-backed table of checkpoint blobs (bytes keys and values) of the Faust ``app``, with
    ``partitions`` partitions (those of its source topic), whose messages may be up to ``max_bytes``:
    a model's checkpoint can outgrow Kafka's default 1 MB message, so the limit of the app's producer
    (read when it starts) and of the changelog topic are raised to it."""
    if (app.conf.producer_max_request_size or 0) < max_bytes:
        with warnings.catch_warnings():  # read only when the producer starts: not too late here
            warnings.simplefilter("ignore")
            app.conf.producer_max_request_size = max_bytes
    return app.Table(
        name, default=None, key_type=bytes, value_type=bytes, partitions=partitions,
        extra_topic_configs={"max.message.bytes": str(max_bytes)}, help=help,
    )
