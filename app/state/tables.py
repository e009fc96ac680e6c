"""The scoring agent's changelog-backed tables.

* ``checkpoints`` - key: the source partition as text (``b"0"``), value: an
  :meth:`~app.learning.OnlineLearner.to_checkpoint` blob.
* ``pending`` - key: the transaction id, value: :func:`~app.state.pending.encode_pending` bytes.

Both are keyed so that an entry lives in the changelog partition of its source partition (the
transactions and labels topics are co-partitioned by transaction id), so the worker that gets a
partition after a rebalance recovers its model and its pending features before it consumes.
Writes go through :func:`~app.state.changelog.put` / :func:`~app.state.changelog.delete`, which
name the changelog partition explicitly.
"""
from __future__ import annotations

import settings
from app.state.changelog import checkpoint_table
from app.worker import app  # importing the worker may import the scoring agent, which imports this module

checkpoints = checkpoint_table(app, settings.CHECKPOINT_TABLE, settings.CHECKPOINT_MAX_BYTES,
                               help="Model checkpoint per source partition.")
pending = app.Table(
    settings.PENDING_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=settings.TOPIC_PARTITIONS,
    help="Features of transactions waiting for their label, by transaction id.",
)
