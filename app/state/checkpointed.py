"""Partition state kept in memory and checkpointed to a changelog-backed table.

An agent that keeps an object per source partition (an anomaly detector, drift monitors) asks
:meth:`CheckpointedStates.get` for it: on first use it is restored from its checkpoint in the table
(which Faust recovers from the table's changelog before the partition is consumed), or made new.
After each batch the agent calls :meth:`~CheckpointedStates.maybe_checkpoint`, which writes a
checkpoint once ``every`` events have gone into the object since the last one; on revocation and on a
clean shutdown, :meth:`~CheckpointedStates.checkpoint_and_forget` writes those with something new
and drops them. An owner that would rather not hold the event loop while a large state is pickled
awaits :meth:`~CheckpointedStates.checkpoint_in_thread` instead when the state is
:meth:`~CheckpointedStates.due`, and :meth:`~CheckpointedStates.settle` s its partitions before
forgetting them. A checkpoint that cannot be read is logged and replaced by a new object. The
checkpoints' changelog records are confirmed by :meth:`~CheckpointedStates.confirm`, which the owner
awaits after each batch (before its events are acknowledged) and after a revocation or shutdown: a
record the broker refuses stops the worker (:mod:`app.outputs`).

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
its value is the position (8 bytes after ``POS1``) followed by ``dump(state)`` (see :func:`envelope`),
signed by ``signer`` (a :class:`~app.state.signing.Signer`) with the key as context. A stored value
that the signer does not verify is never given to ``load``: it is refused (logged, counted in
``fraud_state_rejected_total``) and the partition starts as if it had no checkpoint. Without a
signer, values are written and read unsigned (for state that never leaves the process).

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

import asyncio
import inspect
import logging
import math
import struct
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Generic, Iterable, Mapping, TypeVar

from app import metrics, outputs
from app.learning.learner import CheckpointError
from app.state.changelog import checkpoint_key, get, put
from app.state.signing import SignatureError, Signer

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long an asynchronous checkpoint waits for the broker's confirmation of its changelog record:
# longer than the producer's own request timeout (40 s), so only a record never answered times out.
CONFIRM_TIMEOUT_S = 120.0

_POSITION = b"POS1"  # one position
_POSITIONS = b"POS2"  # a position per named source


def envelope(position: int | Mapping[str, int] | None, blob: bytes) -> bytes:
    """A checkpoint as stored: ``POS1``, the position (signed 64 bits, -1 for none), the blob; or,
    for a state that takes in several sources (topics), ``POS2``, their count (16 bits), each
    source's name (16-bit length, UTF-8) and position, then the blob.

    >>> open_envelope(envelope(41, b"state"))
    (41, b'state')
    >>> open_envelope(envelope({"transactions": 41, "labels": 7}, b"state"))
    ({'transactions': 41, 'labels': 7}, b'state')
    >>> open_envelope(b"state")  # written before positions were kept
    (None, b'state')
    """
    if not isinstance(position, Mapping):
        return _POSITION + struct.pack(">q", -1 if position is None else position) + blob
    parts = [_POSITIONS, struct.pack(">H", len(position))]
    for source, offset in position.items():
        name = source.encode()
        parts += [struct.pack(">H", len(name)), name, struct.pack(">q", offset)]
    return b"".join(parts) + blob


def verified(signer: Signer | None, table, what: str, partition: int, key: bytes, value: bytes) -> bytes | None:
    """The checkpoint stored under ``key`` with its signature checked by ``signer`` (``value`` as
    is without one), or None if it is refused: logged with the partition, the table and the key,
    and counted per ``what`` and reason.

    >>> import types
    >>> from app.state.signing import Signer
    >>> signer, table = Signer("a key of at least sixteen bytes"), types.SimpleNamespace(name="t")
    >>> verified(signer, table, "tally", 0, b"0", signer.sign(b"state", b"0"))
    b'state'
    >>> verified(signer, table, "tally", 0, b"0", b"state") is None
    True
    """
    if signer is None:
        return value
    try:
        return signer.verify(value, context=key)
    except SignatureError as exc:
        log.error("partition %s: refused the %s checkpoint of table %s under key %r (%s): the partition "
                  "starts without it", partition, what, getattr(table, "name", table), key, exc)
        metrics.STATE_REJECTED.labels(state=what, reason=exc.reason).inc()
        return None


def open_envelope(value: bytes) -> tuple[int | dict[str, int] | None, bytes]:
    """``(position, blob)`` of a stored checkpoint (see :func:`envelope`): the position is an int
    (or None) for ``POS1``, a dict of the sources' positions for ``POS2``."""
    if value[:4] == _POSITIONS and len(value) >= 6:
        count, at, positions = struct.unpack(">H", value[4:6])[0], 6, {}
        for _ in range(count):
            size = struct.unpack(">H", value[at:at + 2])[0]
            name = value[at + 2:at + 2 + size].decode()
            positions[name] = struct.unpack(">q", value[at + 2 + size:at + 10 + size])[0]
            at += 10 + size
        return positions, value[at:]
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
    is first made or restored (for metrics). ``signer`` signs each checkpoint written and verifies
    each one read (see the module's docstring). ``catch_up(partition, start, end)`` (an async iterator
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
                 on_caught_up: Callable[[int, int], object] | None = None,
                 signer: Signer | None = None) -> None:
        if every < 1:
            raise ValueError(f"{what}: checkpoints need every >= 1 events, got {every}")
        self.table, self.what = table, what
        self.new, self.dump, self.load, self.progress = new, dump, load, progress
        self.every, self.prefix = every, prefix
        self.on_checkpoint, self.on_open = on_checkpoint, on_open
        self.catch_up, self.feed, self.on_caught_up = catch_up, feed, on_caught_up
        self.signer = signer
        self.states: dict[int, T] = {}
        self.checkpointed_at: dict[int, int] = {}  # progress of each partition's state at its last checkpoint
        self.positions: dict[int, int] = {}  # offset of the last source event in each partition's state
        self._ready: set[int] = set()  # partitions whose state is restored and caught up
        self.unconfirmed: list = []  # the futures of the checkpoints' changelog records not yet confirmed
        self._checkpointing: dict[int, asyncio.Future] = {}  # partitions in checkpoint_in_thread: done when it ends

    def key(self, partition: int) -> bytes:
        return self.prefix + checkpoint_key(partition)

    def get(self, partition: int) -> T:
        """The partition's state: restored from its checkpoint on first use, or new."""
        if self._checkpointing and partition in self._checkpointing:
            raise RuntimeError(f"partition {partition}: the {self.what} is being checkpointed in a thread: "
                               "await settle() first")
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
        back fails, the error is logged and the state goes on with what it was fed. Waits for a
        checkpoint of the partition running in a thread (:meth:`checkpoint_in_thread`)."""
        if self._checkpointing:
            await self.settle([partition])
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
        key = self.key(partition)
        value = get(self.table, key)
        if value is not None:
            value = verified(self.signer, self.table, self.what, partition, key, value)
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
        key = self.key(partition)
        self._write(partition, state, key, self._sealed(state, self.positions.get(partition), key))

    async def checkpoint_in_thread(self, partition: int) -> None:
        """:meth:`checkpoint`, with the costly part (``dump``, the signature) in a worker thread, so
        that the event loop goes on meanwhile (``dump`` runs Python code per object: the thread
        gives the interpreter up to the loop at every switch interval). Nothing may touch the
        partition's state until it returns: :meth:`get` refuses it meanwhile, and :meth:`settle`
        waits for it (revocation and shutdown, before :meth:`checkpoint_and_forget`)."""
        if partition in self._checkpointing:
            raise RuntimeError(f"partition {partition}: the {self.what} is already being checkpointed")
        state, key = self.states[partition], self.key(partition)
        done = self._checkpointing[partition] = asyncio.get_running_loop().create_future()
        sealing = asyncio.ensure_future(asyncio.to_thread(self._sealed, state, self.positions.get(partition), key))

        def release(_=None) -> None:
            if not sealing.cancelled():
                sealing.exception()  # (retrieved: raised to the caller, or the caller was cancelled)
            del self._checkpointing[partition]
            done.set_result(None)

        try:
            value = await asyncio.shield(sealing)
        except asyncio.CancelledError:  # the thread cannot be stopped: the state is not free until it ends
            sealing.add_done_callback(release)
            raise
        except BaseException:
            release()
            raise
        try:
            self._write(partition, state, key, value)
        finally:
            release()

    async def settle(self, partitions: Iterable[int]) -> None:
        """Return once none of ``partitions`` is being checkpointed by :meth:`checkpoint_in_thread`."""
        for partition in list(partitions):
            while (running := self._checkpointing.get(partition)) is not None:
                await running

    def _sealed(self, state: T, position: int | None, key: bytes) -> bytes:
        """The stored value of a checkpoint of ``state``: enveloped with ``position``, signed."""
        value = envelope(position, self.dump(state))
        return value if self.signer is None else self.signer.sign(value, context=key)

    def _write(self, partition: int, state: T, key: bytes, value: bytes) -> None:
        sent = put(self.table, partition, key, value)
        if sent is not None:
            self.unconfirmed.append(sent)
        self.checkpointed_at[partition] = self.progress(state)
        if self.on_checkpoint is not None:
            self.on_checkpoint(partition, state)

    async def confirm(self) -> None:
        """Wait until the broker has confirmed the checkpoints written since the last call; one it
        refused stops the worker (:func:`app.outputs.confirmed`)."""
        sent, self.unconfirmed = self.unconfirmed, []
        await outputs.confirmed(sent, f"the {self.what} checkpoints")

    def due(self, partition: int) -> bool:
        """Whether ``every`` events went into the partition's state since its last checkpoint
        (False if it was forgotten meanwhile, or is being checkpointed)."""
        state = self.states.get(partition)
        return (state is not None and partition not in self._checkpointing
                and self.progress(state) - self.checkpointed_at.get(partition, 0) >= self.every)

    def maybe_checkpoint(self, partition: int) -> bool:
        """Checkpoint the partition's state if it is :meth:`due`; whether it did."""
        if not self.due(partition):
            return False
        self.checkpoint(partition)
        return True

    def checkpoint_and_forget(self, partitions: Iterable[int]) -> None:
        """Checkpoint the states of ``partitions`` that learned something since their last
        checkpoint, then drop them all (a failed checkpoint is logged: the others still go). None
        of them may be in :meth:`checkpoint_in_thread` (:meth:`settle` them first)."""
        partitions = list(partitions)
        running = sorted(set(partitions) & set(self._checkpointing))
        if running:
            raise RuntimeError(f"{self.what}: partitions {running} are being checkpointed: settle() them first")
        for partition in partitions:
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


class AsyncCheckpointedStates(Generic[T]):
    """One ``T`` per partition, like :class:`CheckpointedStates`, for a state that lives elsewhere
    (a model in a model host: opening it and taking its checkpoint are awaited) and takes in
    several sources (topics), each with its own position, saved together in a ``POS2`` envelope.

    ``open(partition, blob, positions)`` restores a state from its checkpoint ``blob`` (None: make
    a new one; ``positions`` are those saved with it, which ``open`` may fill in for a checkpoint
    written without them); ``dump(state)`` gives its checkpoint as of the call: it is called with
    the positions of that moment, so operations the state is given while the checkpoint is being
    written belong to the next one. ``pending(state)`` counts what went into the state since its
    last checkpoint; ``on_checkpoint(partition, state)`` runs once a checkpoint is written and the
    broker has confirmed its changelog record (a checkpoint that fails never calls it; one that
    returns an awaitable is awaited, and the checkpoint ends with it), and
    ``forget(state)`` when the partition is given up. Besides every ``every`` events, a checkpoint
    is due once ``every_s`` seconds (of ``clock``) have passed since the partition's last one (or
    its opening) with something unsaved: events taken in, or positions moved past (transactions
    scored without a label teach the model nothing, but a crash would read them all back from
    the last saved position). ``read_back(source, partition, start, end)``
    (an async iterator of ``(offset, value)`` of the source at ``start <= offset < end``) serves
    :meth:`catch_up`. ``signer`` signs and verifies the checkpoints as in :class:`CheckpointedStates`:
    a refused one reaches ``open`` as None, before anything reads it.

    Positions work as in :class:`CheckpointedStates`, per source: the owner tells :meth:`advance`
    each source event it puts into the state, asks :meth:`seen` about redelivered ones and, before
    the first event of a source after a restore, takes in what :meth:`catch_up` reads back.

    >>> import asyncio, types
    >>> class Tally:
    ...     def __init__(self, n=0):
    ...         self.n, self.since = n, 0
    >>> async def open_tally(partition, blob, positions):
    ...     return Tally(int(blob) if blob else 0)
    >>> async def dump(tally):
    ...     tally.since = 0
    ...     return str(tally.n).encode()
    >>> async def read(source, partition, start, end):  # a stand-in for Kafka: each value is 1
    ...     for offset in range(start, end):
    ...         yield offset, 1
    >>> table = types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value: None)
    >>> def tallies():
    ...     return AsyncCheckpointedStates(table, "tally", open=open_tally, dump=dump,
    ...                                    pending=lambda t: t.since, every=3, read_back=read)
    >>> async def first_owner(states):
    ...     tally = await states.get(0)
    ...     tally.n += 2; tally.since += 2; states.advance(0, "a", 9); states.advance(0, "b", 4)
    ...     await states.checkpoint_and_forget([0])
    >>> async def second_owner(states):
    ...     tally = await states.get(0)
    ...     async for offset, value in states.catch_up(0, "a", 12):  # resumed at 12: 10, 11 came since
    ...         tally.n += value
    ...         states.advance(0, "a", offset)
    ...     return tally.n, states.seen(0, "a", 11), states.seen(0, "b", 5)
    >>> asyncio.run(first_owner(tallies())); asyncio.run(second_owner(tallies()))
    (4, True, False)
    """

    def __init__(self, table, what: str, *, open: Callable[[int, bytes | None, dict[str, int]], Awaitable[T]],
                 dump: Callable[[T], Awaitable[bytes]], pending: Callable[[T], int], every: int,
                 read_back: Callable[[str, int, int, int], AsyncIterator[Any]] | None = None,
                 prefix: bytes = b"", on_checkpoint: Callable[[int, T], object] | None = None,
                 forget: Callable[[T], object] | None = None, signer: Signer | None = None,
                 every_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if every < 1:
            raise ValueError(f"{what}: checkpoints need every >= 1 events, got {every}")
        if every_s is not None and every_s <= 0:
            raise ValueError(f"{what}: checkpoints every_s must be > 0 seconds (or None), got {every_s}")
        self.table, self.what = table, what
        self.open, self.dump, self.pending, self.every = open, dump, pending, every
        self.every_s, self.clock = every_s, clock
        self._last_checkpoint: dict[int, float] = {}  # clock() at each partition's opening or last checkpoint
        self._saved_positions: dict[int, dict[str, int]] = {}  # the positions of the last checkpoint
        self.read_back, self.prefix = read_back, prefix
        self.on_checkpoint, self.forget = on_checkpoint, forget
        self.signer = signer
        self.states: dict[int, T] = {}
        self.positions: dict[int, dict[str, int]] = {}
        self._opening: dict[int, asyncio.Future] = {}
        self._checkpointing: dict[int, asyncio.Future] = {}
        self._caught_up: set[tuple[int, str]] = set()

    def key(self, partition: int) -> bytes:
        return self.prefix + checkpoint_key(partition)

    async def get(self, partition: int) -> T:
        """The partition's state: restored from its checkpoint on first use, or new (opened once,
        however many callers ask meanwhile)."""
        state = self.states.get(partition)
        if state is not None:
            return state
        opening = self._opening.get(partition)
        if opening is None:
            opening = self._opening[partition] = asyncio.ensure_future(self._restore(partition))
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done():
                self._opening.pop(partition, None)

    async def _restore(self, partition: int) -> T:
        key = self.key(partition)
        value = get(self.table, key)
        positions: dict[str, int] = {}
        blob = None
        if value is not None and self.signer is not None:  # hashing a large model: off the event loop
            value = await asyncio.to_thread(verified, self.signer, self.table, self.what, partition, key, value)
        if value is not None:
            position, blob = open_envelope(value)
            if isinstance(position, dict):
                positions = position
        state = await self.open(partition, blob, positions)
        self.positions[partition] = positions
        self._saved_positions[partition] = dict(positions)
        self._last_checkpoint[partition] = self.clock()
        self.states[partition] = state
        return state

    def seen(self, partition: int, source: str, offset: int) -> bool:
        """Whether the event of ``source`` at ``offset`` is already in the partition's state."""
        return offset <= self.positions.get(partition, {}).get(source, -1)

    def advance(self, partition: int, source: str, offset: int) -> None:
        """The event of ``source`` at ``offset`` went into the partition's state."""
        self.positions.setdefault(partition, {})[source] = offset

    def needs_catch_up(self, partition: int, source: str) -> bool:
        """Whether :meth:`catch_up` has yet to run for this partition and source."""
        return (partition, source) not in self._caught_up

    async def catch_up(self, partition: int, source: str, offset: int) -> AsyncIterator[tuple[int, Any]]:
        """Once per partition and source, before its event at ``offset``: the values committed
        after the checkpoint's position and before ``offset``, as ``(offset, value)``, read back
        with ``read_back`` (none when ``offset`` follows the position). A state without a position
        for ``source`` (no checkpoint yet, or none that had taken that source in) has taken in
        nothing of it, so everything before ``offset`` is read back: events a worker consumed
        and committed before its first checkpoint, then crashed, are not lost to the new owner.
        The caller takes each in and :meth:`advance` s past it."""
        if (partition, source) in self._caught_up:
            return
        self._caught_up.add((partition, source))
        position = self.positions.get(partition, {}).get(source, -1)
        if position + 1 >= offset or self.read_back is None:
            return
        started, count = time.monotonic(), 0
        async for item in self.read_back(source, partition, position + 1, offset):
            count += 1
            yield item
        log.info("partition %s: the %s caught up on %d events of %s committed after its checkpoint "
                 "(offsets %d-%d) in %.1f s", partition, self.what, count, source, position + 1, offset - 1,
                 time.monotonic() - started)

    async def checkpoint(self, partition: int) -> None:
        """Write the partition's state to the table now, with the positions of this moment; returns
        once its changelog record is confirmed (raises if the broker refused it)."""
        state = self.states[partition]
        positions = dict(self.positions.get(partition, {}))
        self._last_checkpoint[partition] = self.clock()
        blob = await self.dump(state)
        key = self.key(partition)
        value = envelope(positions, blob)
        if self.signer is not None:
            value = await asyncio.to_thread(self.signer.sign, value, key)
        sent = put(self.table, partition, key, value)
        if sent is not None:  # a Faust table: on_checkpoint runs once the broker has the checkpoint
            await asyncio.wait_for(asyncio.shield(sent), CONFIRM_TIMEOUT_S)
        if partition in self.states:
            self._saved_positions[partition] = positions
        if self.on_checkpoint is not None:
            done = self.on_checkpoint(partition, state)
            if inspect.isawaitable(done):  # say, the deletions it makes, until the broker confirms them
                await done

    def unsaved(self, partition: int) -> bool:
        """Whether the partition's state took in events, or moved past positions, since its last
        checkpoint."""
        state = self.states.get(partition)
        return state is not None and (bool(self.pending(state)) or
                                      self.positions.get(partition, {}) != self._saved_positions.get(partition, {}))

    def maybe_checkpoint(self, partition: int) -> bool:
        """Start a checkpoint in the background once ``every`` events went into the partition's
        state since the last one, or ``every_s`` seconds passed since then with something
        :meth:`unsaved` (one at a time per partition); whether it started one."""
        state = self.states.get(partition)
        if state is None or partition in self._checkpointing:
            return False
        due = self.pending(state) >= self.every or (
            self.every_s is not None and self.clock() - self._last_checkpoint.get(partition, -math.inf) >= self.every_s
            and self.unsaved(partition))
        if not due:
            return False
        task = self._checkpointing[partition] = asyncio.ensure_future(self.checkpoint(partition))
        task.add_done_callback(lambda done: self._checkpoint_done(partition, done))
        return True

    def _checkpoint_done(self, partition: int, task: asyncio.Future) -> None:
        if self._checkpointing.get(partition) is task:
            del self._checkpointing[partition]
        if not task.cancelled() and task.exception() is not None:
            log.error("partition %s: %s checkpoint failed: %r", partition, self.what, task.exception())

    async def checkpoint_and_forget(self, partitions: Iterable[int]) -> None:
        """Checkpoint the states of ``partitions`` with something new since their last checkpoint
        (after any checkpoint under way), then drop them all (a failed checkpoint is logged)."""
        for partition in list(partitions):
            running = self._checkpointing.get(partition)
            if running is not None:
                await asyncio.wait([running])
            state = self.states.get(partition)
            if state is None:
                continue
            if self.unsaved(partition):
                try:
                    await self.checkpoint(partition)
                except Exception:
                    log.exception("partition %s: %s checkpoint failed", partition, self.what)
            del self.states[partition]
            self.positions.pop(partition, None)
            self._saved_positions.pop(partition, None)
            self._last_checkpoint.pop(partition, None)
            self._caught_up = {done for done in self._caught_up if done[0] != partition}
            if self.forget is not None:
                self.forget(state)

    def partitions(self) -> list[int]:
        return list(self.states)

    def __repr__(self) -> str:
        return f"AsyncCheckpointedStates({self.what!r}, partitions={sorted(self.states)})"
