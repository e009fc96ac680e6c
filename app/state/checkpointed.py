"""Partition state kept in memory and checkpointed to a changelog-backed table.

An agent that keeps an object per source partition (an anomaly detector, drift monitors) asks
:meth:`CheckpointedStates.get` for it: on first use it is restored from its checkpoint in the table
(which Faust recovers from the table's changelog before the partition is consumed), or made new.
After each batch the agent calls :meth:`~CheckpointedStates.maybe_checkpoint`, which writes a
checkpoint once ``every`` events have gone into the object since the last one; on revocation and on a
clean shutdown, :meth:`~CheckpointedStates.checkpoint_and_forget` writes those with something new
and drops them. A checkpoint that cannot be read is logged and replaced by a new object.

Positions: an agent that tells :meth:`~CheckpointedStates.advance` the offset of each source event
it puts into a state gets that position saved with each checkpoint. After a crash the consumer
resumes at the committed offset, which may be before or after the checkpoint's position:

* events at or before it are already in the restored state (:meth:`~CheckpointedStates.seen`):
  the agent must not put them in again;
* events after it and before the first one consumed were committed after the checkpoint: given a
  ``catch_up(partition, start, end)`` reader (an async iterator of source values, such as one
  made by :func:`app.state.read_back.values_reader`) and ``feed(state, value)``,
  :meth:`~CheckpointedStates.ready` reads them back and feeds them before the state is used.

So from its first checkpoint on, a state takes in every event of its partition exactly once.

The checkpoint of partition ``p`` is written to changelog partition ``p`` under ``prefix`` followed
by ``p`` (several kinds of state can share a table), so the worker that gets ``p`` recovers it;
its value is the position (8 bytes after ``POS1``) followed by ``dump(state)`` (see :func:`envelope`).

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

With positions, a restored state catches up on what was committed after its checkpoint:

>>> import asyncio
>>> async def read(partition, start, end):  # a stand-in for Kafka: the value of offset o is 1
...     for offset in range(start, end):
...         yield 1
>>> def feed(tally, value):
...     tally.n += value
>>> tallies = CheckpointedStates(table, "tally", new=Tally, dump=lambda t: pickle.dumps(t.n),
...                              load=lambda b: Tally(pickle.loads(b)), progress=lambda t: t.n, every=3,
...                              catch_up=read, feed=feed)
>>> tallies.get(1).n += 1; tallies.advance(1, 41); tallies.checkpoint_and_forget([1])
>>> tally = asyncio.run(tallies.ready(1, 45))  # resumed at 45: 42, 43 and 44 were committed since
>>> tally.n, tallies.seen(1, 44), tallies.seen(1, 45)
(4, True, False)
"""
from __future__ import annotations

import logging
import struct
import time
from typing import Any, AsyncIterator, Callable, Generic, Iterable, TypeVar

from app.learning.learner import CheckpointError
from app.state.changelog import checkpoint_key, get, put

log = logging.getLogger(__name__)

T = TypeVar("T")

_POSITION = b"POS1"


def envelope(position: int | None, blob: bytes) -> bytes:
    """A checkpoint as stored: ``POS1``, the position (signed 64 bits, -1 for none), the blob.

    >>> open_envelope(envelope(41, b"state"))
    (41, b'state')
    >>> open_envelope(b"state")  # written before positions were kept
    (None, b'state')
    """
    return _POSITION + struct.pack(">q", -1 if position is None else position) + blob


def open_envelope(value: bytes) -> tuple[int | None, bytes]:
    """``(position or None, blob)`` of a stored checkpoint (see :func:`envelope`)."""
    if value[:4] != _POSITION or len(value) < 12:
        return None, value
    position = struct.unpack(">q", value[4:12])[0]
    return (None if position < 0 else position), value[12:]


class CheckpointedStates(Generic[T]):
    """One ``T`` per partition, checkpointed to ``table`` (see the module's docstring).

    ``new()`` makes one, ``dump(state)`` / ``load(blob)`` write and read a checkpoint (``load``
    raises :class:`~app.learning.learner.CheckpointError` on a blob it cannot use), and
    ``progress(state)`` counts the events that went into it. ``on_checkpoint(partition, state)`` is
    called after each checkpoint written and ``on_open(partition, state)`` when a partition's state
    is first made or restored (for metrics). ``catch_up(partition, start, end)`` (an async iterator
    of the source values at offsets ``start <= offset < end``) and ``feed(state, value)`` let
    :meth:`ready` catch a restored state up; without them it does not. ``on_caught_up(partition,
    count)`` is called once per partition by :meth:`ready`, with the number of events fed (0 when
    there was nothing to read back).
    """

    def __init__(self, table, what: str, *, new: Callable[[], T], dump: Callable[[T], bytes],
                 load: Callable[[bytes], T], progress: Callable[[T], int], every: int, prefix: bytes = b"",
                 on_checkpoint: Callable[[int, T], object] | None = None,
                 on_open: Callable[[int, T], object] | None = None,
                 catch_up: Callable[[int, int, int], AsyncIterator[Any]] | None = None,
                 feed: Callable[[T, Any], object] | None = None,
                 on_caught_up: Callable[[int, int], object] | None = None) -> None:
        if every < 1:
            raise ValueError(f"{what}: checkpoints need every >= 1 events, got {every}")
        self.table, self.what = table, what
        self.new, self.dump, self.load, self.progress = new, dump, load, progress
        self.every, self.prefix = every, prefix
        self.on_checkpoint, self.on_open = on_checkpoint, on_open
        self.catch_up, self.feed, self.on_caught_up = catch_up, feed, on_caught_up
        self.states: dict[int, T] = {}
        self.checkpointed_at: dict[int, int] = {}  # progress of each partition's state at its last checkpoint
        self.positions: dict[int, int] = {}  # offset of the last source event in each partition's state
        self._ready: set[int] = set()  # partitions whose state is restored and caught up

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

    async def ready(self, partition: int, offset: int) -> T:
        """The partition's state, ready for the source event at ``offset``: the first time, restored
        (:meth:`get`) and fed the events committed after its checkpoint's position, read back with
        ``catch_up`` (nothing to read if ``offset`` directly follows it or is before it). If reading
        back fails, the error is logged and the state goes on with what it was fed."""
        state = self.states.get(partition)
        if state is not None and partition in self._ready:
            return state
        state = self.get(partition)
        self._ready.add(partition)
        fed = await self._catch_up(partition, state, offset)
        if self.on_caught_up is not None:
            self.on_caught_up(partition, fed)
        return state

    async def _catch_up(self, partition: int, state: T, offset: int) -> int:
        position = self.positions.get(partition)
        if position is None or position + 1 >= offset or self.catch_up is None or self.feed is None:
            return 0
        started, fed = time.monotonic(), 0
        try:
            async for value in self.catch_up(partition, position + 1, offset):
                self.feed(state, value)
                fed += 1
        except Exception:  # the stream goes on: a state short of some events beats a stopped agent
            log.exception("partition %s: the %s could not catch up on offsets %d-%d (%d read back): it goes on "
                          "without the rest", partition, self.what, position + 1, offset - 1, fed)
        else:
            log.info("partition %s: the %s caught up on %d events committed after its checkpoint (offsets %d-%d) "
                     "in %.1f s", partition, self.what, fed, position + 1, offset - 1, time.monotonic() - started)
        self.positions[partition] = offset - 1
        return fed

    def seen(self, partition: int, offset: int) -> bool:
        """Whether the source event at ``offset`` is already in the partition's state (a
        redelivery of an event before the restored checkpoint's position, or a duplicate)."""
        return offset <= self.positions.get(partition, -1)

    def advance(self, partition: int, offset: int) -> None:
        """The source event at ``offset`` went into the partition's state."""
        self.positions[partition] = offset

    def _restore(self, partition: int) -> T:
        value = get(self.table, self.key(partition))
        if value is None:
            return self.new()
        position, blob = open_envelope(value)
        try:
            state = self.load(blob)
        except CheckpointError as exc:
            log.error("partition %s: the %s checkpoint is unusable (%s): starting a new one", partition, self.what, exc)
            return self.new()
        if position is not None:
            self.positions[partition] = position
        log.info("partition %s: restored %r from its checkpoint (%s events, up to offset %s)",
                 partition, state, self.progress(state), position)
        return state

    def checkpoint(self, partition: int) -> None:
        """Write the partition's state to the table now."""
        state = self.states[partition]
        put(self.table, partition, self.key(partition), envelope(self.positions.get(partition), self.dump(state)))
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
            self.positions.pop(partition, None)
            self._ready.discard(partition)

    def partitions(self) -> list[int]:
        return list(self.states)

    def __repr__(self) -> str:
        return f"CheckpointedStates({self.what!r}, partitions={sorted(self.states)})"
