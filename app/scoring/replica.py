"""Central learning, the scorer's side: the worker's replica of the central model, and partition
state without model checkpoints.

With ``LEARNING_MODE = "central"`` (see ``docs/scaleout.md``) one learner learns every labelled
example and publishes snapshots of its model; each worker holds one :class:`Replica` of it in its
model host (under the key :data:`REPLICA_KEY`), shared by all the worker's partitions, and only
predicts with it. Between two batches the scorer calls :meth:`Replica.refresh`: when a newer
snapshot has come (``newest()``, e.g. :meth:`app.state.snapshot_follower.SnapshotFollower.newest`), its
model replaces the replica (the model host's ``put`` operation, awaited, so every prediction
submitted after it uses the new model and a batch is predicted by one version). Before the first
snapshot the replica is the warm start (``warm_start_path``) or a fresh model; so that a worker that
joins (or restarts) does not score with a fresh model while the learner's snapshot is there to read,
the replica's opening waits until ``ready()`` (the follower has read the snapshots topic up to the
end it found) or ``ready_timeout_s`` has passed.

A score carries the replica's :attr:`Replica.version` (the snapshot's ``<model>-g<generation>@<examples
received>``; ``<model>-g<generation>@0`` before any) and :attr:`Replica.events_learned` (the examples
its model learned). A model that learned one genuine example in ``1 / sample_rate``
believes frauds ``1 / sample_rate`` times as common: :meth:`Replica.correct` gives the probability
corrected with the snapshot's rate, what the decision threshold sees.

:class:`Replica` also stands in for a partition's learner handle
(:class:`~app.learning.hosted_learner.HostedLearner`) where the scorer and the ``/model`` page use
one: its operations predict and never learn, and forgetting a partition leaves it in place.

:class:`UncheckpointedStates` keeps each partition's :class:`~app.scoring.partition.PartitionScorer`
(pending index, parked labels, prequential evaluator of the replica's predictions) without the model
checkpoints of :class:`~app.state.checkpointed.AsyncCheckpointedStates`: a scorer in central mode has
no model of its own to save, and no catch-up to run. Each labelled example it writes is confirmed by
the broker before the message that produced it is acknowledged, so a message committed has had its
example written; a restarted worker (or a partition's next owner) scores again what was not
committed and writes its examples again, and the learner skips those at or below the source
positions it has learned (:mod:`app.learning.examples`). The pending features, parked labels and
window tables stay: they are changelog-backed tables, restored by Faust.

>>> import asyncio
>>> from app.learning.model_host import LocalHost
>>> from app.learning.pipeline import model_factory
>>> import types
>>> published = []
>>> replica = Replica(model_factory(kind="lr"), newest=lambda: published[-1] if published else None)
>>> async def demo():
...     host = LocalHost()
...     await replica.opened(host)
...     before = replica.version
...     learner = replica.fresh()  # the learner's side, here: learn one fraud, then publish
...     learner.learn({"V1": 1.0}, 1)
...     published.append(types.SimpleNamespace(version="lr-g1@10", received=10, sample_rate=0.1,
...                                             model=learner.to_checkpoint()))
...     swapped = await replica.refresh(host)
...     probability, = await host.submit([replica.step({"V1": 1.0}, None)])
...     return before, swapped, replica.version, replica.events_learned, probability > 0.5
>>> asyncio.run(demo())
('lr-g0@0', True, 'lr-g1@10', 10, True)
>>> replica.correct(0.5)  # the model learned a tenth of the genuine examples
0.0909...
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Generic, Iterable, TypeVar

from app import metrics
from app.learning.learner import OnlineLearner
from app.learning.learner_set import OpFailed
from app.learning.subsampling import correct

log = logging.getLogger(__name__)

REPLICA_KEY = ("replica",)  # the replica's key in the model host (the central learner's is ("central",))

T = TypeVar("T")


class Replica:
    """The worker's replica of the central model in its model host (see the module's docstring).

    ``model_factory`` and ``warm_start_path`` make the model served before the first snapshot;
    ``newest()`` gives the newest verified snapshot seen (anything with ``version``, ``received``,
    ``sample_rate`` and ``model``, the bytes of an :class:`~app.learning.OnlineLearner` checkpoint), or
    None; ``ready()`` says whether the snapshots have been read (see the module's docstring)."""

    key = REPLICA_KEY
    learned_since_checkpoint = 0  # a replica learns nothing
    meta: dict = {}

    def __init__(self, model_factory: Callable, warm_start_path: str = "",
                 newest: Callable[[], Any] | None = None, ready: Callable[[], bool] | None = None,
                 ready_timeout_s: float = 30.0) -> None:
        self.factory = model_factory
        self.warm_start_path = warm_start_path
        self.newest = newest or (lambda: None)
        self.ready = ready or (lambda: True)
        self.ready_timeout_s = ready_timeout_s
        self.host: Any = None
        self.name = ""
        self.generation = 0
        self.snapshot: Any = None  # the snapshot the replica holds (None: the warm start or a fresh model)
        self._refused: Any = None  # the last snapshot the model host could not load (not tried again)
        self._opening: asyncio.Future | None = None

    # --- what a score carries -------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The snapshot's version, or ``<model>-g<generation>@0`` before any."""
        return self.snapshot.version if self.snapshot is not None else f"{self.name}-g{self.generation}@0"

    @property
    def events_learned(self) -> int:
        """The examples the snapshot's model learned (those subsampling left out are not; 0 before any)."""
        if self.snapshot is None:
            return 0
        return int(getattr(self.snapshot, "learned", self.snapshot.received))

    @property
    def sample_rate(self) -> float:
        return float(self.snapshot.sample_rate) if self.snapshot is not None else 1.0

    @property
    def restored(self) -> bool:
        """Whether the replica holds a snapshot of the central model."""
        return self.snapshot is not None

    def correct(self, probability: float) -> float:
        """``probability`` corrected for the held snapshot's sample rate
        (:func:`app.learning.subsampling.correct`)."""
        return correct(probability, self.sample_rate)

    # --- the model host -------------------------------------------------------------------------
    async def opened(self, host) -> "Replica":
        """The replica, opened in ``host`` on first use (the warm start or a fresh model; once, however
        many partitions open meanwhile), then brought to the newest snapshot."""
        if self.host is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open(host))
            try:
                await asyncio.shield(self._opening)
            finally:
                if self._opening.done() and self.host is None:
                    self._opening = None
        await self.refresh(self.host)
        return self

    async def _open(self, host) -> None:
        info, = await host.submit([("open", self.key, None, self.factory, self.warm_start_path)])
        if isinstance(info, OpFailed):
            raise RuntimeError(f"the model replica could not be opened: {info.message}")
        deadline = time.monotonic() + self.ready_timeout_s
        while not self.ready():
            if time.monotonic() >= deadline:
                log.warning("the snapshots were not read within %.0f s: scoring without them until they are",
                            self.ready_timeout_s)
                break
            await asyncio.sleep(0.05)
        self.name, self.generation, self.host = info.name, info.generation, host
        log.info("model replica opened (%s) until the first snapshot", "warm start from " + self.warm_start_path
                 if self.warm_start_path else "a fresh model")

    async def refresh(self, host) -> bool:
        """Load the newest snapshot into the replica when it is not the one held (nor one the host
        could not load); whether it did. Awaited: operations submitted after it predict with it."""
        newest = self.newest()
        if newest is None or newest is self.snapshot or newest is self._refused:
            return False
        if self.snapshot is not None and newest.version == self.snapshot.version:
            self.snapshot = newest
            return False
        result, = await host.submit([("put", self.key, newest.model)])
        if isinstance(result, OpFailed):
            self._refused = newest
            log.error("the model host could not load snapshot %s: %s (the replica stays %s)", newest.version,
                      result.message, self.version)
            metrics.STATE_REJECTED.labels(state="model snapshot", reason="load").inc()
            return False
        old, self.snapshot = self.version, newest
        log.debug("model replica: %s -> %s", old, self.version)
        return True

    # --- what the scorer asks of a partition's learner handle -----------------------------------
    def step(self, x: dict, y: int | None = None, explain: bool = False) -> tuple:
        """The operation that predicts ``x`` (``y`` is ignored: a replica never learns)."""
        return ("step_explain" if explain else "step", self.key, x, None)

    def unlearned(self) -> None:
        """Nothing: a replica's operations learn nothing."""

    def drop(self) -> None:
        """Nothing: the replica serves the worker's other partitions (a partition was given up)."""

    def fresh(self) -> OnlineLearner:
        """An untrained in-process learner of the same model."""
        return OnlineLearner(self.factory, generation=self.generation + 1, name=self.name or None)

    def __repr__(self) -> str:
        return f"Replica({self.version}, sample_rate={self.sample_rate})"


class UncheckpointedStates(Generic[T]):
    """One ``T`` per partition, opened with ``open(partition, None, {})`` on first use and given to
    ``forget(state)`` when the partition is given up: the part of
    :class:`~app.state.checkpointed.AsyncCheckpointedStates` the scorer uses, without checkpoints,
    positions or catch-ups (see the module's docstring for why central learning needs none).

    >>> import asyncio
    >>> async def open_state(partition, blob, positions):
    ...     return [partition]
    >>> states = UncheckpointedStates(open_state, forget=lambda state: state.append("forgotten"))
    >>> async def demo():
    ...     state = await states.get(3)
    ...     before = states.seen(3, "transactions", 0), states.needs_catch_up(3, "transactions")
    ...     await states.checkpoint_and_forget([3])
    ...     return before, state, states.partitions()
    >>> asyncio.run(demo())
    ((False, False), [3, 'forgotten'], [])
    """

    def __init__(self, open: Callable[[int, bytes | None, dict], Awaitable[T]],
                 forget: Callable[[T], object] | None = None) -> None:
        self.open, self.forget = open, forget
        self.states: dict[int, T] = {}
        self.positions: dict[int, dict[str, int]] = {}  # none kept: what the /model page shows
        self._opening: dict[int, asyncio.Future] = {}

    async def get(self, partition: int) -> T:
        """The partition's state, opened on first use (once, however many callers ask meanwhile)."""
        state = self.states.get(partition)
        if state is not None:
            return state
        opening = self._opening.get(partition)
        if opening is None:
            opening = self._opening[partition] = asyncio.ensure_future(self._open(partition))
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done():
                self._opening.pop(partition, None)

    async def _open(self, partition: int) -> T:
        state = await self.open(partition, None, {})
        self.states[partition] = state
        return state

    def seen(self, partition: int, source: str, offset: int) -> bool:
        """False: every event is taken in when it comes (a redelivered one writes its example again)."""
        return False

    def advance(self, partition: int, source: str, offset: int) -> None:
        """Nothing: no position is kept."""

    def needs_catch_up(self, partition: int, source: str) -> bool:
        """False: nothing is read back."""
        return False

    async def catch_up(self, partition: int, source: str, offset: int) -> AsyncIterator[tuple[int, Any]]:
        """Nothing to read back."""
        return
        yield  # an async generator

    def maybe_checkpoint(self, partition: int) -> bool:
        """False: there is nothing to checkpoint."""
        return False

    async def checkpoint_and_forget(self, partitions: Iterable[int]) -> None:
        """Drop the states of ``partitions`` (given up, or a shutdown)."""
        for partition in list(partitions):
            state = self.states.pop(partition, None)
            if state is not None and self.forget is not None:
                self.forget(state)

    def partitions(self) -> list[int]:
        return list(self.states)

    def __repr__(self) -> str:
        return f"UncheckpointedStates(partitions={sorted(self.states)})"
