"""Partition state: checkpointed to changelog-backed tables, restored and caught up by a new owner.

* :mod:`app.state.checkpointed` - one state per partition with its checkpoints and stream positions
  (:class:`~app.state.checkpointed.CheckpointedStates`, and its async sibling for a state that
  lives in a model host and takes in several topics).
* :mod:`app.state.signing` - the HMAC-SHA256 signature that every checkpoint carries, checked
  before a stored blob is loaded (state read back from Kafka is data, never code).
* :mod:`app.state.changelog` - writes to a changelog-backed table that name their changelog partition.
* :mod:`app.state.pending` - the features of transactions waiting for their label, as bytes (JSON), and
  the per-partition index that bounds and expires them.
* :mod:`app.state.read_back` - reading a stretch of a topic partition back from Kafka (a catch-up).
"""
