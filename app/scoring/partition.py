"""What the scorer keeps for one partition: its learner, its waiting transactions, its metrics.

A :class:`PartitionScorer` is plain per-key state (no Kafka, no Faust): the partition's
:class:`~app.learning.hosted_learner.HostedLearner` (the model itself lives in a model host), the
:class:`~app.state.pending.PendingIndex` of its transactions waiting for their label, the
:class:`~app.learning.PrequentialEvaluator` of its labelled predictions, the
:class:`~app.state.parked.ParkedIndex` of its labels that came before their transaction, and the
pending entries and parked labels learned since its last checkpoint (deleted once that checkpoint
is written: a crash before it brings their labels, or their transactions, again, and they must
still find their features, or their label). Without model checkpoints (``checkpointed=False``:
central learning, where the scorer deletes them as soon as their example is sent) none are kept.

>>> import asyncio
>>> from app.learning.model_host import LocalHost
>>> from app.learning.pipeline import model_factory
>>> from app.learning.hosted_learner import HostedLearner
>>> async def demo():
...     learner = await HostedLearner.open(LocalHost(), 0, None, model_factory(kind="lr"), "")
...     scorer = PartitionScorer(0, learner, pending_max=10, pending_ttl_s=60.0)
...     op = scorer.learner.step({"V1": 1.0}, None)
...     probability, = await learner.host.submit([op])
...     scorer.waiting(b"tx-1", event_time=100.0)
...     scorer.labelled(b"tx-1", 1, probability)
...     return probability, len(scorer.pending), scorer.labelled_since_checkpoint, scorer.evaluator.count
>>> asyncio.run(demo())
(0.5, 0, [b'tx-1'], 1)
"""
from __future__ import annotations

import time

from app.learning.evaluation import PrequentialEvaluator
from app.learning.hosted_learner import HostedLearner
from app.state.parked import ParkedIndex
from app.state.pending import PendingIndex


class PartitionScorer:
    """One partition's learner handle, waiting transactions and prequential evaluator."""

    def __init__(self, partition: int, learner: HostedLearner, *, pending_max: int = 100_000,
                 pending_ttl_s: float = 7 * 24 * 3600.0, expired_remembered: int = 200_000,
                 prequential_window: int = 10_000, threshold: float = 0.5, parked_max: int = 100_000,
                 parked_ttl_s: float = 7 * 24 * 3600.0, checkpointed: bool = True) -> None:
        self.partition = partition
        self.learner = learner
        self.pending = PendingIndex(pending_max, pending_ttl_s, expired_remembered)
        self.evaluator = PrequentialEvaluator(prequential_window, threshold)
        self.checkpointed_learning = checkpointed  # keep what was learned until a checkpoint covers it
        self.labelled_since_checkpoint: list[bytes] = []
        self.parked = ParkedIndex(parked_max, parked_ttl_s)
        self.unparked_since_checkpoint: list[bytes] = []  # parked labels learned with their transaction
        self.unparked_covers = 0  # of those, the ones the checkpoint being written covers
        self.transactions_seen = 0  # scored and taken in by this worker (not counting a restored state's)
        self.checkpoint_covers = 0  # labelled entries the checkpoint being written covers
        self.last_scored = time.monotonic()

    @property
    def unsaved(self) -> int:
        """What went into this partition's state since its last checkpoint (learned events and
        labels whose pending entries wait for that checkpoint to be deleted)."""
        return max(self.learner.learned_since_checkpoint, len(self.labelled_since_checkpoint) - self.checkpoint_covers,
                   len(self.unparked_since_checkpoint) - self.unparked_covers)

    def waiting(self, key: bytes, event_time: float) -> None:
        """A transaction scored without its label: it waits for it."""
        self.pending.add(key, event_time)

    def learned_in_event(self, label: int, probability: float, event_time: float) -> None:
        """A transaction learned with the label it carried."""
        self.evaluator.update(label, probability)
        self.pending.see(event_time)

    def labelled(self, key: bytes, label: int, probability: float) -> None:
        """A waiting transaction's label came and is being learned."""
        self.evaluator.update(label, probability)
        self.pending.discard(key)
        if self.checkpointed_learning:
            self.labelled_since_checkpoint.append(key)

    def unparked(self, key: bytes, label: int, probability: float, event_time: float) -> None:
        """A transaction whose label was parked was just scored and is being learned with it."""
        self.evaluator.update(label, probability)
        self.pending.see(event_time)
        self.parked.pop(key)
        if self.checkpointed_learning:
            self.unparked_since_checkpoint.append(key)

    async def checkpoint(self) -> bytes:
        """The learner's checkpoint as of now; the labelled entries and parked labels learned so
        far are covered by it (see :meth:`checkpointed`)."""
        self.checkpoint_covers = len(self.labelled_since_checkpoint)
        self.unparked_covers = len(self.unparked_since_checkpoint)
        return await self.learner.checkpoint()

    def checkpointed(self) -> tuple[list[bytes], list[bytes]]:
        """The checkpoint of :meth:`checkpoint` was written: the labelled entries it covers, whose
        pending features can go now, and the parked labels it covers, which can go too."""
        done = self.labelled_since_checkpoint[:self.checkpoint_covers]
        del self.labelled_since_checkpoint[:self.checkpoint_covers]
        unparked = self.unparked_since_checkpoint[:self.unparked_covers]
        del self.unparked_since_checkpoint[:self.unparked_covers]
        self.transactions_seen = 0  # scored and taken in by this worker (not counting a restored state's)
        self.checkpoint_covers = self.unparked_covers = 0
        return done, unparked

    def __repr__(self) -> str:
        return f"PartitionScorer({self.partition}, {self.learner!r}, pending={len(self.pending)})"
