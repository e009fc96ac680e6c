"""The anomaly detectors of a worker's partitions, checkpointed, and what they make of a transaction.

:class:`AnomalyDetectors` keeps one :class:`~app.anomaly.AnomalyDetector` per input partition in a
:class:`~app.state.checkpointed.CheckpointedStates` (restored before the partition's first event,
checkpointed every ``every`` events, on revocation and on shutdown; :meth:`AnomalyDetectors.confirm`
waits for the broker's confirmation of the checkpoints written). For each transaction,
:meth:`AnomalyDetectors.process` scores it, learns it unless the restored detector learned it
before a crash (then it is judged again, not learned twice), and returns the
:class:`~app.records.Anomaly` to send when the score passes the threshold.

``windows``, when given, adds the transaction's window features to the detector's input: the same
features as the scorer's (:class:`~app.features.transaction.TransactionFeatures`, per card and per
terminal, and the calendar flags), the cards' windows kept in the detectors' own card table (a
:class:`~app.scoring.windows.ScoringWindows`), so that what the detector sees does not depend on
whether the scorer has taken a transaction in before it. A card's update is idempotent by offset,
its changelog record is confirmed with the batch's anomalies (:meth:`AnomalyDetectors.confirm`),
and a partition's idle cards are deleted after each batch. No catch-up then: the features of
events read back after a crash are not the ones they had.

>>> import types
>>> from app.anomaly import AnomalyDetector, FixedThreshold
>>> from app.records import Transaction
>>> table = types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value: None)
>>> detectors = AnomalyDetectors(table, lambda: AnomalyDetector(trees=3, height=4, window=5, warmup=0,
...                              threshold=FixedThreshold(-1.0), seed=1), every=100)
>>> tx = Transaction(transaction_id="tx-1", event_time=1.7e9, Amount=5.0, **{f"V{i}": 0.0 for i in range(1, 29)})
>>> flagged = detectors.process(tx, partition=0, offset=0)
>>> flagged.transaction_id, detectors.states.get(0).events_seen
('tx-1', 1)
"""
from __future__ import annotations

import time
from typing import Any, AsyncIterator, Callable

from app import metrics, outputs
from app.anomaly.detector import AnomalyDetector
from app.records import Anomaly
from app.state.checkpointed import CheckpointedStates
from app.state.signing import Signer


class AnomalyDetectors:
    """Each partition's detector made by ``new``, checkpointed to ``table`` every ``every``
    events; after a crash it learns what ``catch_up(partition, start, end)`` reads back. ``signer``
    signs the checkpoints and verifies them before one is loaded. ``windows``: the window features
    (see the module's docstring), or None for the transaction's own fields only."""

    def __init__(self, table, new: Callable[[], AnomalyDetector], *, every: int,
                 catch_up: Callable[[int, int, int], AsyncIterator[Any]] | None = None,
                 windows: Any = None, transactions_topic: str = "transactions", signer: Signer | None = None) -> None:
        self.windows = windows
        self.transactions_topic = transactions_topic
        self._writes: list = []  # the card windows' changelog records not confirmed yet
        self._latest: dict[int, float] = {}  # per partition, the latest event time seen (for expiry)
        self.revocations = 0  # how many revocations this worker has had (see revoked_since)
        self._revoked_at: dict[int, int] = {}  # per partition, the count at its last revocation
        self.states: CheckpointedStates[AnomalyDetector] = CheckpointedStates(
            table, "anomaly detector", new=new, dump=AnomalyDetector.to_checkpoint,
            load=AnomalyDetector.from_checkpoint, progress=lambda detector: detector.events_seen, every=every,
            on_checkpoint=self._checkpointed, on_open=self._opened,
            catch_up=None if windows is not None else catch_up, feed=self._learn_again, on_caught_up=self._caught_up,
            signer=signer)

    async def ready(self, partition: int, offset: int) -> AnomalyDetector:
        """The partition's detector, restored and caught up, for the transaction at ``offset``."""
        return await self.states.ready(partition, offset)

    def process(self, tx, partition: int, offset: int) -> Anomaly | None:
        """Score, then learn ``tx`` (the partition's detector must be :meth:`ready`); its
        anomaly if flagged."""
        x = tx.features()
        if self.windows is not None:
            x, written = self.windows.transaction(tx, x, partition, offset)
            if written is not None:
                self._writes.append(written)
            latest = self._latest.get(partition)
            self._latest[partition] = tx.event_time if latest is None else max(latest, tx.event_time)
        detector = self.states.get(partition)
        if self.states.seen(partition, offset):  # learned before a crash: judged again, not learned twice
            verdict = detector.judge(x)
        else:
            verdict = detector.process(x)
            self.states.advance(partition, offset)
        metrics.ANOMALY_SCORE.observe(verdict.score)
        if not verdict.flagged:
            return None
        metrics.ANOMALIES.inc()
        return Anomaly(transaction_id=tx.transaction_id, event_time=tx.event_time, score=verdict.score,
                       threshold=verdict.threshold, threshold_kind=detector.threshold.kind,
                       model_version=detector.version, processing_time=time.time())

    async def after_batch(self, partitions) -> None:
        """Refresh the gauges, delete idle cards' windows and checkpoint when due: pickled, read
        back and signed in a worker thread, while the event loop goes on with other work (the
        caller must not use the detectors until this returns)."""
        for partition in partitions:
            detector = self.states.states.get(partition)
            if detector is not None:  # (revoked meanwhile: checkpointed then)
                if self.windows is not None and partition in self._latest:
                    self._writes += self.windows.expire(partition, self._latest[partition])
                metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)
                if self.states.due(partition):
                    await self.states.checkpoint_in_thread(partition)

    async def confirm(self) -> None:
        """Wait for the broker to confirm the card windows' records and the checkpoints written (a
        refused one stops the worker)."""
        writes, self._writes = self._writes, []
        await outputs.confirmed(writes, "the anomaly card windows' changelog")
        await self.states.confirm()

    def revoked_since(self, partition: int, revocations: int) -> bool:
        """Whether ``partition`` was revoked since :attr:`revocations` was ``revocations``: the
        events of it taken before are the new owner's to process.

        >>> import asyncio, types
        >>> detectors = AnomalyDetectors(types.SimpleNamespace(data={}), AnomalyDetector, every=10)
        >>> before = detectors.revocations
        >>> asyncio.run(detectors.revoked({"transactions": {1}}))
        >>> detectors.revoked_since(1, before), detectors.revoked_since(0, before)
        (True, False)
        >>> detectors.revoked_since(1, detectors.revocations)
        False
        """
        return self._revoked_at.get(partition, 0) > revocations

    async def revoked(self, lost: dict[str, set[int]]) -> None:
        lost_partitions = lost.get(self.transactions_topic, ())
        self.revocations += 1
        for partition in lost_partitions:
            self._revoked_at[partition] = self.revocations
        await self.states.settle(lost_partitions)  # a checkpoint under way in a thread ends first
        self.states.checkpoint_and_forget(lost_partitions)
        await self.confirm()
        for partition in lost_partitions:
            self._latest.pop(partition, None)
            if self.windows is not None:
                self.windows.forget(partition)

    async def close(self) -> None:
        await self.states.settle(self.states.partitions())
        self.states.checkpoint_and_forget(self.states.partitions())
        await self.confirm()

    def _opened(self, partition: int, detector: AnomalyDetector) -> None:
        metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)

    def _checkpointed(self, partition: int, detector: AnomalyDetector) -> None:
        metrics.ANOMALY_CHECKPOINTS.labels(partition=str(partition)).inc()

    @staticmethod
    def _learn_again(detector: AnomalyDetector, tx) -> None:
        detector.process(tx.features())

    def _caught_up(self, partition: int, count: int) -> None:
        metrics.CAUGHT_UP.labels(state="anomaly", topic=self.transactions_topic, partition=str(partition)).inc(count)
