"""The anomaly detectors of a worker's partitions, checkpointed, and what they make of a transaction.

:class:`AnomalyDetectors` keeps one :class:`~app.anomaly.AnomalyDetector` per input partition in a
:class:`~app.state.checkpointed.CheckpointedStates` (restored before the partition's first event,
checkpointed every ``every`` events, on revocation and on shutdown; :meth:`AnomalyDetectors.confirm`
waits for the broker's confirmation of the checkpoints written). For each transaction,
:meth:`AnomalyDetectors.process` scores it, learns it unless the restored detector learned it
before a crash (then it is judged again, not learned twice), and returns the
:class:`~app.records.Anomaly` to send when the score passes the threshold. ``window_features(tx,
event)``, when given, adds the transaction's window features to the detector's input (those of
read-back events are gone, so no catch-up then).

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

from app import metrics
from app.anomaly.detector import AnomalyDetector
from app.records import Anomaly
from app.state.checkpointed import CheckpointedStates
from app.state.signing import Signer


class AnomalyDetectors:
    """Each partition's detector made by ``new``, checkpointed to ``table`` every ``every``
    events; after a crash it learns what ``catch_up(partition, start, end)`` reads back. ``signer``
    signs the checkpoints and verifies them before one is loaded."""

    def __init__(self, table, new: Callable[[], AnomalyDetector], *, every: int,
                 catch_up: Callable[[int, int, int], AsyncIterator[Any]] | None = None,
                 window_features: Callable[[Any, Any], dict] | None = None,
                 transactions_topic: str = "transactions", signer: Signer | None = None) -> None:
        self.window_features = window_features
        self.transactions_topic = transactions_topic
        self.states: CheckpointedStates[AnomalyDetector] = CheckpointedStates(
            table, "anomaly detector", new=new, dump=AnomalyDetector.to_checkpoint,
            load=AnomalyDetector.from_checkpoint, progress=lambda detector: detector.events_seen, every=every,
            on_checkpoint=self._checkpointed, on_open=self._opened,
            catch_up=None if window_features else catch_up, feed=self._learn_again, on_caught_up=self._caught_up,
            signer=signer)

    async def ready(self, partition: int, offset: int) -> AnomalyDetector:
        """The partition's detector, restored and caught up, for the transaction at ``offset``."""
        return await self.states.ready(partition, offset)

    def process(self, tx, partition: int, offset: int, event: Any = None) -> Anomaly | None:
        """Score, then learn ``tx`` (the partition's detector must be :meth:`ready`); its
        anomaly if flagged."""
        x = tx.features()
        if self.window_features is not None:
            x.update(self.window_features(tx, event))
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

    def after_batch(self, partitions) -> None:
        """Refresh the gauges and checkpoint when due."""
        for partition in partitions:
            detector = self.states.states.get(partition)
            if detector is not None:  # (revoked meanwhile: checkpointed then)
                metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)
                self.states.maybe_checkpoint(partition)

    async def confirm(self) -> None:
        """Wait for the broker to confirm the checkpoints written (a refused one stops the worker)."""
        await self.states.confirm()

    async def revoked(self, lost: dict[str, set[int]]) -> None:
        self.states.checkpoint_and_forget(lost.get(self.transactions_topic, ()))
        await self.states.confirm()

    async def close(self) -> None:
        self.states.checkpoint_and_forget(self.states.partitions())
        await self.states.confirm()

    def _opened(self, partition: int, detector: AnomalyDetector) -> None:
        metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)

    def _checkpointed(self, partition: int, detector: AnomalyDetector) -> None:
        metrics.ANOMALY_CHECKPOINTS.labels(partition=str(partition)).inc()

    @staticmethod
    def _learn_again(detector: AnomalyDetector, tx) -> None:
        detector.process(tx.features())

    def _caught_up(self, partition: int, count: int) -> None:
        metrics.CAUGHT_UP.labels(state="anomaly", topic=self.transactions_topic, partition=str(partition)).inc(count)
