"""Partition state kept in memory and checkpointed to a changelog-backed table.

An agent that keeps an object per source partition (an anomaly detector, drift monitors) asks
:meth:`CheckpointedStates.get` for it: on first use it is restored from its checkpoint in the table
(which Faust recovers from the table's changelog before the partition is consumed), or made new.
After each batch the agent calls :meth:`~CheckpointedStates.maybe_checkpoint`, which writes a
checkpoint once ``every`` events have gone into the object since the last one; on revocation and on a
clean shutdown, :meth:`~CheckpointedStates.checkpoint_and_forget` writes those with something new
and drops them. A checkpoint that cannot be read is logged and replaced by a new object.

The checkpoint of partition ``p`` is written to changelog partition ``p`` under ``prefix`` followed
by ``p`` (several kinds of state can share a table), so the worker that gets ``p`` recovers it.

>>> import pickle, types
>>> class Tally:
...     def __init__(self, n=0):
...         self.n = n
>>> table = types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value: None)
>>> tallies = CheckpointedStates(table, "tally", new=Tally, dump=lambda t: pickle.dumps(t.n),
...                              load=lambda b: Tally(pickle.loads(b)), progress=lambda t: t.n, every=3)
>>> tallies.get(0).n += 2; tallies.maybe_checkpoint(0)
False
>>> tallies.get(0).n += 2; tallies.maybe_checkpoint(0)
True
>>> tallies.checkpoint_and_forget([0])  # nothing new since the last checkpoint: nothing written
>>> tallies.get(0).n  # restored, as a new owner of partition 0 would
4
"""
from __future__ import annotations

import logging
from typing import Callable, Generic, Iterable, TypeVar

from app.learning.learner import CheckpointError
from app.state.changelog import checkpoint_key, get, put

log = logging.getLogger(__name__)

T = TypeVar("T")


class CheckpointedStates(Generic[T]):
    """One ``T`` per partition, checkpointed to ``table`` (see the module's docstring).

    ``new()`` makes one, ``dump(state)`` / ``load(blob)`` write and read a checkpoint (``load``
    raises :class:`~app.learning.learner.CheckpointError` on a blob it cannot use), and
    ``progress(state)`` counts the events that went into it. ``on_checkpoint(partition, state)`` is
    called after each checkpoint written and ``on_open(partition, state)`` when a partition's state
    is first made or restored (for metrics).
    """

    def __init__(self, table, what: str, *, new: Callable[[], T], dump: Callable[[T], bytes],
                 load: Callable[[bytes], T], progress: Callable[[T], int], every: int, prefix: bytes = b"",
                 on_checkpoint: Callable[[int, T], object] | None = None,
                 on_open: Callable[[int, T], object] | None = None) -> None:
        if every < 1:
            raise ValueError(f"{what}: checkpoints need every >= 1 events, got {every}")
        self.table, self.what = table, what
        self.new, self.dump, self.load, self.progress = new, dump, load, progress
        self.every, self.prefix = every, prefix
        self.on_checkpoint, self.on_open = on_checkpoint, on_open
        self.states: dict[int, T] = {}
        self.checkpointed_at: dict[int, int] = {}  # progress of each partition's state at its last checkpoint

    def key(self, partition: int) -> bytes:
        return self.prefix + checkpoint_key(partition)

    def get(self, partition: int) -> T:
        """The partition's state: restored from its checkpoint on first use, or new."""
        state = self.states.get(partition)
        if state is None:
            state = self.states[partition] = self._restore(partition)
            self.checkpointed_at[partition] = self.progress(state)
            if self.on_open is not None:
                self.on_open(partition, state)
        return state

    def _restore(self, partition: int) -> T:
        blob = get(self.table, self.key(partition))
        if blob is None:
            return self.new()
        try:
            state = self.load(blob)
        except CheckpointError as exc:
            log.error("partition %s: the %s checkpoint is unusable (%s): starting a new one", partition, self.what, exc)
            return self.new()
        log.info("partition %s: restored %r from its checkpoint (%s events)", partition, state, self.progress(state))
        return state

    def checkpoint(self, partition: int) -> None:
        """Write the partition's state to the table now."""
        state = self.states[partition]
        put(self.table, partition, self.key(partition), self.dump(state))
        self.checkpointed_at[partition] = self.progress(state)
        if self.on_checkpoint is not None:
            self.on_checkpoint(partition, state)

    def maybe_checkpoint(self, partition: int) -> bool:
        """Checkpoint the partition's state if ``every`` events went into it since the last time
        (nothing if it was forgotten meanwhile); whether it did."""
        state = self.states.get(partition)
        if state is None or self.progress(state) - self.checkpointed_at.get(partition, 0) < self.every:
            return False
        self.checkpoint(partition)
        return True

    def checkpoint_and_forget(self, partitions: Iterable[int]) -> None:
        """Checkpoint the states of ``partitions`` that learned something since their last
        checkpoint, then drop them all (a failed checkpoint is logged: the others still go)."""
        for partition in list(partitions):
            state = self.states.get(partition)
            if state is not None and self.progress(state) != self.checkpointed_at.get(partition):
                try:
                    self.checkpoint(partition)
                except Exception:
                    log.exception("partition %s: %s checkpoint failed", partition, self.what)
            self.states.pop(partition, None)
            self.checkpointed_at.pop(partition, None)

    def partitions(self) -> list[int]:
        return list(self.states)

    def __repr__(self) -> str:
        return f"CheckpointedStates({self.what!r}, partitions={sorted(self.states)})"
