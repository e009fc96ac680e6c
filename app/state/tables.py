"""The scoring agent's changelog-backed tables.

* ``checkpoints`` - key: the source partition as text (``b"0"``), value: an
  :meth:`~app.learning.OnlineLearner.to_checkpoint` blob.
* ``pending`` - key: the transaction id, value: :func:`~app.state.pending.encode_pending` bytes.

Both are keyed so that an entry lives in the changelog partition of its source partition (the
transactions and labels topics are co-partitioned by transaction id), so the worker that gets a
partition after a rebalance recovers its model and its pending features before it consumes.
Writes go through :func:`put` / :func:`delete`, which name the changelog partition explicitly:
unlike ``table[key] = value`` they work in batches that mix partitions and outside of any event
(at shutdown and on revocation).
"""
from __future__ import annotations

import warnings

import settings


def checkpoint_key(partition: int) -> bytes:
    return str(partition).encode()


def put(table, partition: int, key: bytes, value: bytes) -> None:
    """``table[key] = value``, logged to the changelog partition ``partition``."""
    table.data[key] = value
    table.send_changelog(partition, key, value)


def delete(table, partition: int, key: bytes) -> None:
    """``del table[key]``, a tombstone in the changelog partition ``partition``."""
    table.data.pop(key, None)
    table.send_changelog(partition, key, None, value_serializer="raw")


def get(table, key: bytes) -> bytes | None:
    return table.data.get(key)


# The tables (after the helpers: importing the worker imports the scoring agent, which imports them).
from app.worker import app  # noqa: E402

# A forest's checkpoint can outgrow Kafka's default 1 MB message: raise the limit of the producer
# (read when the producer starts) and of the checkpoint changelog topic.
if (app.conf.producer_max_request_size or 0) < settings.CHECKPOINT_MAX_BYTES:
    with warnings.catch_warnings():  # read only when the producer starts: not too late here
        warnings.simplefilter("ignore")
        app.conf.producer_max_request_size = settings.CHECKPOINT_MAX_BYTES

checkpoints = app.Table(
    settings.CHECKPOINT_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=settings.TOPIC_PARTITIONS,
    extra_topic_configs={"max.message.bytes": str(settings.CHECKPOINT_MAX_BYTES)},
    help="Model checkpoint per source partition.",
)
pending = app.Table(
    settings.PENDING_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=settings.TOPIC_PARTITIONS,
    help="Features of transactions waiting for their label, by transaction id.",
)
