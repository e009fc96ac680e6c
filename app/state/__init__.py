"""Partition state of the scoring agent.

* :mod:`app.state.pending` - pure: the features of transactions waiting for their label, as bytes,
  and the per-partition index that bounds and expires them.
* :mod:`app.state.tables` - the changelog-backed Faust tables (model checkpoints, pending features)
  and the writes that name their changelog partition explicitly.
"""
