"""The anomaly agent: ``MinMaxScaler | HalfSpaceTrees`` scores each transaction, then learns it;
an :class:`~app.records.Anomaly` goes to ``anomalies`` when the score passes the threshold
(``ANOMALY_THRESHOLD_KIND``: a fixed value or a rolling quantile of recent scores).

One detector per input partition (partition state, like the scorer's model). Its input is the
transaction's ``V1..V28, Amount``, plus the window features (:class:`app.windows.tables.WindowTables`,
tables ``<WINDOW_TABLE_PREFIX>-anomaly-*``) when ``ANOMALY_WINDOW_FEATURES`` is on. Those tables are
this agent's own, so the scorer's window tables never count an event twice.

State: each partition's detector (model, threshold, events seen) is checkpointed to the
changelog-backed table ``ANOMALY_CHECKPOINT_TABLE`` every ``ANOMALY_CHECKPOINT_EVERY_EVENTS`` events,
when its partition is revoked and on a clean shutdown; the worker that gets the partition restores
it before its first event, so a restart neither resets the detector nor starts a new warm-up. After
a crash the detector resumes from its last checkpoint, and the events between that checkpoint and
the committed offset are not learned again (an unsupervised model: nothing else is lost). An
unreadable checkpoint is logged and replaced by a new detector. The window tables are restored from
their own changelogs.

Metrics: ``fraud_anomalies_total``, ``fraud_anomaly_score``, ``fraud_anomaly_events_seen{partition}``,
``fraud_anomaly_checkpoints_total{partition}``, ``fraud_events_out_total{topic=anomalies}`` and
``fraud_events_in_total{topic=transactions}``; the last one only when the scoring agent does not
run in this worker (it counts the same messages), so each consumed message counts once.
"""
from __future__ import annotations

import logging
import time

import settings
from app.worker import app  # first: the worker module imports the agents (and they the topics)
from app import metrics
from app.anomaly import AnomalyDetector
from app.learning.learner import CheckpointError
from app.records import Anomaly
from app.state.changelog import checkpoint_key, checkpoint_table, get, put
from app.topics import anomalies, transactions

log = logging.getLogger(__name__)

DETECTORS: dict[int, AnomalyDetector] = {}
CHECKPOINTED_AT: dict[int, int] = {}  # events_seen of each partition's detector at its last checkpoint
CHECKPOINTS = checkpoint_table(app, settings.ANOMALY_CHECKPOINT_TABLE, settings.CHECKPOINT_MAX_BYTES,
                               help="Anomaly detector checkpoint per source partition.")
COUNTS_INPUT = "scoring" not in settings.AGENTS
WINDOW_TABLES = None
if settings.ANOMALY_WINDOW_FEATURES:
    from app.windows.tables import WindowTables

    WINDOW_TABLES = WindowTables(app, prefix=f"{settings.WINDOW_TABLE_PREFIX}-anomaly")


def detector_for(partition: int) -> AnomalyDetector:
    """The partition's detector: restored from its checkpoint on first use, or new."""
    detector = DETECTORS.get(partition)
    if detector is None:
        detector = DETECTORS[partition] = _restore(partition)
        CHECKPOINTED_AT[partition] = detector.events_seen
        metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)
    return detector


def _restore(partition: int) -> AnomalyDetector:
    blob = get(CHECKPOINTS, checkpoint_key(partition))
    if blob is None:
        return AnomalyDetector()
    try:
        detector = AnomalyDetector.from_checkpoint(blob)
    except CheckpointError as exc:
        log.error("partition %s: the anomaly detector's checkpoint is unusable (%s): starting a new one",
                  partition, exc)
        return AnomalyDetector()
    log.info("partition %s: restored %r from its checkpoint", partition, detector)
    return detector


def checkpoint(partition: int) -> None:
    """Write the partition's detector to the checkpoint table (a few ms: it is small)."""
    detector = DETECTORS[partition]
    put(CHECKPOINTS, partition, checkpoint_key(partition), detector.to_checkpoint())
    CHECKPOINTED_AT[partition] = detector.events_seen
    metrics.ANOMALY_CHECKPOINTS.labels(partition=str(partition)).inc()


def _checkpoint_and_forget(partitions) -> None:
    for partition in partitions:
        detector = DETECTORS.get(partition)
        if detector is not None and detector.events_seen != CHECKPOINTED_AT.get(partition):
            try:
                checkpoint(partition)
            except Exception:
                log.exception("partition %s: anomaly detector checkpoint failed", partition)
        DETECTORS.pop(partition, None)
        CHECKPOINTED_AT.pop(partition, None)


@app.agent(transactions)
async def detect_anomalies(stream):
    """Score then learn each transaction; send the flagged ones to ``anomalies``."""
    topic_in, topic_out = settings.TRANSACTIONS_TOPIC, settings.ANOMALIES_TOPIC
    events_in = metrics.EVENTS_IN.labels(topic=topic_in)
    events_out = metrics.EVENTS_OUT.labels(topic=topic_out)
    async for batch in stream.take_events(settings.BATCH_SIZE, within=settings.BATCH_WITHIN_S):
        for event in batch:
            tx = event.value
            if COUNTS_INPUT:
                events_in.inc()
            x = tx.features()
            if WINDOW_TABLES is not None:
                x.update(WINDOW_TABLES.update(tx.card_id, tx.event_time, tx.Amount, event=event))
            detector = detector_for(event.message.partition)
            verdict = detector.process(x)
            metrics.ANOMALY_SCORE.observe(verdict.score)
            if verdict.flagged:
                await anomalies.send(key=event.key, value=Anomaly(
                    transaction_id=tx.transaction_id,
                    event_time=tx.event_time,
                    score=verdict.score,
                    threshold=verdict.threshold,
                    threshold_kind=detector.threshold.kind,
                    model_version=detector.version,
                    processing_time=time.time(),
                ))
                metrics.ANOMALIES.inc()
                events_out.inc()
        for partition in {event.message.partition for event in batch}:
            detector = DETECTORS.get(partition)
            if detector is None:  # (revoked meanwhile: checkpointed then)
                continue
            metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)
            if detector.events_seen - CHECKPOINTED_AT.get(partition, 0) >= settings.ANOMALY_CHECKPOINT_EVERY_EVENTS:
                checkpoint(partition)


@app.on_partitions_revoked.connect
async def _on_partitions_revoked(sender, revoked, **kwargs) -> None:
    """Checkpoint the detectors of partitions this worker loses; a new owner restores them."""
    _checkpoint_and_forget({tp.partition for tp in revoked if tp.topic == settings.TRANSACTIONS_TOPIC})


@app.on_before_shutdown.connect
async def _on_shutdown(sender, **kwargs) -> None:
    """Checkpoint every detector on a clean shutdown (the producer is flushed after)."""
    _checkpoint_and_forget(list(DETECTORS))
    log.info("checkpointed the anomaly detectors on shutdown")
